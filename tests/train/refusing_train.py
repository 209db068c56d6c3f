"""Training on a storage that refuses writes, in its own process, for the write-failure tests:

  TFSMOOTH_REFUSE=<refusal> python tests/train/refusing_train.py <launch/train.py flags>
  TFSMOOTH_REFUSE=<refusal> python tests/train/refusing_train.py --driver <train_driver args>

installs the refusal `$TFSMOOTH_REFUSE` names (`refusals.install_from_environment`; none when
unset), then runs launch/train.py as `python launch/train.py` would, or with `--driver` the
tiny trainer run of `train_driver` (several workers: TF_CONFIG), whose `errors.UserError` ends
the process as the binaries' runner ends it: one paragraph on stderr, exit status 2.
"""

import os
import runpy
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)

from tfsmooth import logs  # noqa: E402

logs.quiet()  # before TensorFlow's import, as the binaries do

from absl import logging  # noqa: E402

from tests.train import refusals  # noqa: E402
from tfsmooth import errors  # noqa: E402


def _driver(args):
  from tests.train import train_driver  # pylint: disable=g-import-not-at-top

  logging.set_verbosity(logging.INFO)
  try:
    train_driver.main(*args)
  except errors.UserError as e:
    print(errors.paragraph(f'Error: {e}'), file=sys.stderr, flush=True)
    sys.exit(2)


if __name__ == '__main__':
  refusals.install_from_environment()
  if sys.argv[1:2] == ['--driver']:
    _driver(sys.argv[2:])
  else:
    sys.argv[0] = os.path.join(ROOT, 'launch', 'train.py')
    runpy.run_path(sys.argv[0], run_name='__main__')
