"""The README's main job, end to end (slow: a few minutes of training)."""

import pytest

from tfsmooth.configs import rings
from tfsmooth.train import lowdim


@pytest.mark.slow
def test_main_job_beats_the_paper_on_rings(tmp_path):
  metrics = lowdim.run(rings.get_config(), str(tmp_path))
  assert metrics['nll_iw'] <= metrics['nll_elbo']
  assert metrics['entropy'] < metrics['nll_iw'] < metrics['paper_nll']
