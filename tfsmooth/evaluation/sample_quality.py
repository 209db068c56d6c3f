"""FID, KID and Inception score of samples against reference images, through a feature network.

With features f and class probabilities p(y | x) = softmax(logits) of a `FeatureNetwork`:
  FID = |m1 - m2|^2 + Tr(C1 + C2 - 2 (C1 C2)^(1/2)), m and C the mean and unbiased covariance
        of f over each set (Heusel et al. 2017);
  KID = unbiased MMD^2 between the two sets of f with the kernel k(a, b) = (a.b / F + 1)^3,
        averaged over blocks of at most `kid_block_size` points of each set; kid_std is the
        standard error of that mean over the blocks (Binkowski et al. 2018);
  IS  = exp(E_x KL(p(y | x) || p(y))), p(y) the mean of p(y | x) over the set, computed on
        `splits` disjoint equal parts and reported as their mean and standard deviation, as
        Salimans et al. (2016) do (10 splits).
The math is TF-GAN's (`tfgan.classifier_metrics()`), in float64. Activations are computed in
batches and only the [N, F] features and [N, K] logits are kept, so 50,000 samples fit.

For samples drawn given class labels (`class_scores`): KID per class, each class's samples
against that class's reference images, and the class accuracy, the share of the samples drawn
for class k that the classifier assigns to k (argmax of its logits): the standard check that
the conditioning works, beside the same accuracy on real images of each class, its ceiling.
"""

import math

import numpy as np
import tensorflow as tf

from tfsmooth.evaluation import tfgan

SPLITS = 10
KID_BLOCK_SIZE = 1024


def _batches(images, batch_size):
  if isinstance(images, (np.ndarray, tf.Tensor)):
    for start in range(0, len(images), batch_size):
      yield images[start : start + batch_size]
  else:
    yield from images


def activations(network, images, batch_size=500):
  """{'features': [N, F], 'logits': [N, K]} (float32 numpy) of `network` on `images`.

  `images`: float32 [N, H, W, C] in [-1, 1], or an iterable of such batches (e.g. a sampler's
  output, so the images never need to exist all at once); arrays go through in batches of
  `batch_size`.
  """
  call = tf.function(network, reduce_retracing=True)
  outputs = {'features': [], 'logits': []}
  for batch in _batches(images, batch_size):
    result = call(tf.cast(batch, tf.float32))
    for key in outputs:
      outputs[key].append(result[key].numpy())
  if not outputs['features']:
    raise ValueError('No images to compute activations of.')
  return {key: np.concatenate(values) for key, values in outputs.items()}


def fid(features1, features2):
  """Frechet distance between Gaussians fitted to two sets of features [N1, F], [N2, F]."""
  metrics = tfgan.classifier_metrics()
  return float(
      metrics.frechet_classifier_distance_from_activations(
          tf.constant(features1, tf.float64), tf.constant(features2, tf.float64)
      )
  )


def kid(features1, features2, block_size=KID_BLOCK_SIZE, seed=0):
  """(KID, its standard error) of two sets of features; the error is nan with a single block.

  Both sets are shuffled (seeded) first: TF-GAN's block estimator assumes random order.
  """
  rng = np.random.default_rng(seed)
  metrics = tfgan.classifier_metrics()
  value, std = metrics.kernel_classifier_distance_and_std_from_activations(
      tf.constant(rng.permutation(features1), tf.float64),
      tf.constant(rng.permutation(features2), tf.float64),
      max_block_size=block_size,
  )
  return float(value), float(std)


def inception_score(logits, splits=SPLITS):
  """(mean, standard deviation) of the classifier score over `splits` equal parts of `logits`."""
  if len(logits) < splits:
    raise ValueError(
        f'The Inception score over {splits} splits needs at least {splits} '
        f'samples, not {len(logits)}.'
    )
  metrics = tfgan.classifier_metrics()
  size = len(logits) // splits
  scores = [
      float(
          metrics.classifier_score_from_logits(
              tf.constant(logits[i * size : (i + 1) * size], tf.float64)
          )
      )
      for i in range(splits)
  ]
  return float(np.mean(scores)), float(np.std(scores))


def scores(samples, reference, network_name, splits=SPLITS, kid_block_size=KID_BLOCK_SIZE):
  """The figures of `samples` against `reference`, both outputs of `activations`.

  Returns {fid, kid, kid_std, inception_score, inception_score_std,
  reference_inception_score, feature_network, num_samples, num_reference, splits};
  kid_std is None with a single KID block (at most `kid_block_size` points per set).
  """
  kid_value, kid_std = kid(samples['features'], reference['features'], kid_block_size)
  score, score_std = inception_score(samples['logits'], splits)
  return dict(
      fid=fid(samples['features'], reference['features']),
      kid=kid_value,
      kid_std=None if math.isnan(kid_std) else kid_std,
      inception_score=score,
      inception_score_std=score_std,
      reference_inception_score=inception_score(reference['logits'], splits)[0],
      feature_network=network_name,
      num_samples=len(samples['features']),
      num_reference=len(reference['features']),
      splits=splits,
  )


def accuracy(logits, labels, num_classes):
  """(overall, [per class]) share of rows whose argmax of `logits` [N, K] is their label [N];
  a class without rows gets None, and so does the overall figure of no rows."""
  labels = np.asarray(labels)
  hits = np.argmax(np.asarray(logits), axis=1) == labels
  per_class = [
      float(np.mean(hits[labels == k])) if np.any(labels == k) else None for k in range(num_classes)
  ]
  return (float(np.mean(hits)) if len(hits) else None), per_class


def class_scores(
    samples,
    sample_labels,
    reference,
    reference_labels,
    class_names,
    with_accuracy=True,
    kid_block_size=KID_BLOCK_SIZE,
):
  """Per class k of `class_names`, the figures of the samples drawn for k (`sample_labels`)
  against the reference images of class k (`reference_labels`), both outputs of `activations`:

  {name: {num_samples, num_reference, kid, kid_std, accuracy}}; kid (and kid_std) None where
  either set has fewer than 2 images (the unbiased MMD needs two of each), accuracy (the share
  of the class's samples the classifier assigns to k) None without samples or without
  `with_accuracy` (a network whose logits are not these classes).
  """
  sample_labels, reference_labels = np.asarray(sample_labels), np.asarray(reference_labels)
  per_class = {}
  if with_accuracy:
    _, hits = accuracy(samples['logits'], sample_labels, len(class_names))
  for k, name in enumerate(class_names):
    mine, theirs = sample_labels == k, reference_labels == k
    entry = dict(
        num_samples=int(mine.sum()), num_reference=int(theirs.sum()), kid=None, kid_std=None
    )
    if entry['num_samples'] >= 2 and entry['num_reference'] >= 2:
      value, std = kid(samples['features'][mine], reference['features'][theirs], kid_block_size)
      entry.update(kid=value, kid_std=None if math.isnan(std) else std)
    entry['accuracy'] = hits[k] if with_accuracy else None
    per_class[name] = entry
  return per_class
