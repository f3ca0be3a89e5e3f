"""A synthetic micro-expression dataset: real-face subjects showing AU-like micro-motions.

``memix.synth.build.generate(params, out_dir, model_path)`` writes CASME II's layout
(``subNN/EPxx_yy/img{N}.jpg``) and coding sheet by default, so the CASME II adapter reads it unchanged;
``synth.layout`` picks another adapter's layout (SAMM, SMIC, CAS(ME)^3, MMEW) or a list of them, one folder
each, for a composite. Modules: ``aus`` (AU displacement fields), ``classes`` (emotion recipes and
proportions), ``identity`` (subjects from one photo), ``plan`` (who shows what, seeded per clip), ``render``
(frames), ``sheet`` (deterministic .xlsx), ``layouts`` (each dataset's folders, names and sheet), ``build``
(the entry point), ``quirks`` (the real releases' quirks written into a generated layout, for tests; never
called by the pipeline, so the default data's bytes do not change).
"""
