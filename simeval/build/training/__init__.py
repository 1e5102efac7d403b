"""Training the fp32 PilotNets (``trainer``) with one loop per framework (``fit_torch``, ``fit_keras``)."""
