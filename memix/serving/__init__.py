"""Using a fitted model: the model file (``modelfile``), prediction on new clips (``predict``), ONNX (``export``).

The ``fit`` stage writes ``models/<method>.pt`` (:mod:`memix.training.fit` trains it); ``memix predict`` and
``memix export`` read it. Submodules are imported where used, so the ``fit`` stage loads no face or ONNX code.
"""
