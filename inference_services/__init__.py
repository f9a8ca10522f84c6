"""KServe InferenceServices: typed deployment config, builder, deploy client and canary control."""
