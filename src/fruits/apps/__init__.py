"""Commands built on the library and the catalog: `fruits-predict`, `fruits-emr`."""
