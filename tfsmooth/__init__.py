"""tfsmooth: autoregressive modeling with distribution smoothing (Meng et al., ICLR 2021)."""

__version__ = '0.1.0'
