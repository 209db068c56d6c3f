"""Programs over a trained run or an exported SavedModel: sample-quality evaluation and image
grids. They sit above `experiment` and `export`; the metric and figure helpers they use are in
`tfsmooth.evaluation`, their flag-level checks in `launch/`."""
