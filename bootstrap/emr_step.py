"""spark-submit entry point of the packaged project (the EMR step runs this file).

    spark-submit [spark options] emr_step.py --env emr --conf-source conf-fruits.tar.gz \
        [--pipelines ingestion,featurization] [--params data_root=s3a://b/p/data,...]

The arguments are those of `kedro run`. The project itself comes from its wheel, installed on
every node by the bootstrap action (or given with --py-files).
"""

import logging

import fruits
from fruits.__main__ import main

if __name__ == "__main__":
    logging.getLogger("fruits").warning("fruits %s from %s", fruits.__version__, fruits.__file__)
    main()
