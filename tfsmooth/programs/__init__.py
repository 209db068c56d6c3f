"""Programs over a trained run or an exported SavedModel, and the binaries' runner.

The programs behind launch/*.py (`exporting`, `evaluating`, `sample_eval`, `image_grids`,
`classifier_training`) sit above `experiment` and `export`; the metric and figure helpers they
use are in `tfsmooth.evaluation`. `cli` runs a binary (flags parsed and checked, user mistakes
as one paragraph, exit status 2) and `flag_errors` words the flag and config-flag mistakes.
"""
