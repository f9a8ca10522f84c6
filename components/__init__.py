"""KFP v2 components: thin, typed wrappers over the library (one module each).

Each component is a lightweight Python component on our components image
(``install_kfp_package=False``); its body imports one step from
:mod:`aiserving.steps` and calls it. The docstring is what the Kubeflow UI
shows, so every argument and output is described there.
"""
