"""A synthetic CASME II-shaped dataset: real-face subjects showing AU-like micro-motions.

``memix.synth.build.generate(params, out_dir, model_path)`` writes CASME II's layout
(``subNN/EPxx_yy/img{N}.jpg``) and coding sheet, so the CASME II adapter reads it unchanged. Modules: ``aus``
(AU displacement fields), ``classes`` (emotion recipes and proportions), ``identity`` (subjects from one
photo), ``plan`` (who shows what, seeded per clip), ``render`` (frames), ``sheet`` (deterministic .xlsx),
``build`` (the entry point).
"""
