"""The harness's contract suite on this plugin's components: `pytest` here runs every check on `vanilla_pointnet`."""
from harness.testing import ComponentContract


class TestVanillaPointNet(ComponentContract):
    plugin = "vanilla_pointnet"
