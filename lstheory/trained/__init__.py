"""The ``trained`` level: claims about trained networks, measured on a real data set.

The data set is scikit-learn's bundled digits (1,797 8x8 images, 10 classes;
the optional extra ``pip install 'lstheory[trained]'``).  Everything is
seeded and single-threaded, so a run repeats its figures on the same machine:

- :mod:`lstheory.trained.data`: the fixed train / validation / test split;
- :mod:`lstheory.trained.training`: small multilayer perceptrons, full-batch training;
- :mod:`lstheory.trained.measures`: gaps, expected calibration error, reliability
  diagrams, temperature scaling, within- over between-class spread;
- :mod:`lstheory.trained.experiments`: one experiment per trained claim
  (``lstheory.claims.trained``), each returning its verdict and figures;
- :mod:`lstheory.trained.records`: the committed measurements
  (``docs/data/trained_claims.json``, written by ``lstheory verify --level trained --record``).

torch and scikit-learn are imported inside the functions that need them.
"""
