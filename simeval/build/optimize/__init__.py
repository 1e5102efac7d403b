"""Building the optimized variants of ``simeval.agents.variants``: ``builder`` runs the handler of a
variant's recipe (``torch_int8``, ``onnx_export``, ``litert_convert``, ``tensorrt_build``)."""
