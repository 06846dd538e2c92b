"""The start-up self-check: silent wrong answers are refused, not served."""
import numpy as np
import pytest

from edgeapp import engines
from edgeapp.engines import paddle_lite as lite


def test_numpy_2_is_refused(monkeypatch):
    monkeypatch.setattr(np, "__version__", "2.1.0")
    with pytest.raises(engines.RuntimeCheckFailed) as e:
        lite.check()
    assert "numpy<2" in str(e.value)


def test_installed_numpy_passes():
    lite.check()


class _DroppingTensor:
    """A tensor like paddlelite 2.13rc0's under numpy 2: from_numpy() keeps nothing."""

    def __init__(self, shape):
        self._shape = shape

    def from_numpy(self, a):
        pass

    def numpy(self):
        return np.zeros(self._shape, np.float32)


def test_selfcheck_refuses_a_runtime_that_drops_input(monkeypatch):
    shape = (1, 3, 8, 8)
    p = lite.Predictor.__new__(lite.Predictor)
    p.model_path = "fake.nb"
    p.input_shape = list(shape)
    p._p = type("P", (), {"get_input": lambda self, i: _DroppingTensor(shape)})()
    with pytest.raises(engines.RuntimeCheckFailed) as e:
        p.selfcheck()
    assert "Refusing to serve" in str(e.value)
