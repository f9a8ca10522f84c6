"""KFP v2 components: thin, typed wrappers over the library (one module each)."""
