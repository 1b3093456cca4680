"""Demo-only code: the sample corpus generator and the demo models trained from it.

Nothing under ``jobs.demo`` is used by the pipeline's stages. ``corpuslake demo`` calls it to write the
sample (:mod:`jobs.demo.sample_corpus`, whose vocabularies and templates are the JSON files in
``jobs/demo/data``) and to train the offline stand-in models (:mod:`jobs.demo.models`); tests use the same
two entry points.
"""
