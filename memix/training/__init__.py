"""LOSO training: folds, augmentation, the fold loop, resume checkpoints, the worker pool and the run's outputs."""
