"""Shared test set-up: headless matplotlib, few threads (CI has 2 cores), fixed seeds."""

import os

os.environ.setdefault("MPLBACKEND", "Agg")
# OpenMP threads busy-wait between ops; when the 2 cores are shared that slows forward passes 5-10x.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import matplotlib  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

matplotlib.use("Agg")
torch.set_num_threads(min(2, os.cpu_count() or 1))

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMPLES = os.path.join(REPO, "data_samples", "synthpose")


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    yield


@pytest.fixture
def one_thread():
    """One intra-op thread for tests of tiny per-sample work (as in a DataLoader worker): a second
    thread gains nothing there and costs a lot when the 2 cores are busy. Use it with
    ``pytestmark = pytest.mark.usefixtures("one_thread")``."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
