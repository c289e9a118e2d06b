"""Images and the pretrained CNN, with no Spark and no Kedro: decode, build, export, embed."""
