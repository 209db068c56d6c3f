"""The README's main job, end to end (slow: a few minutes of training)."""

import pytest

from tfsmooth import experiment
from tfsmooth.configs import rings


@pytest.mark.slow
def test_main_job_beats_the_paper_on_rings(tmp_path):
  metrics = experiment.Run.create(rings.get_config(), tmp_path).train()
  assert metrics['nll_iw'] <= metrics['nll_elbo']
  assert metrics['entropy'] < metrics['nll_iw'] < metrics['paper_nll']
