"""A fake port module for the site tests."""


def unrelated():
    return 0


class Layer:
    def fprop_acts(self, x):
        """Ports: rel-a/src/kern.cu:3-7 Layer::fpropActs

        DIVERGES: a made-up divergence, to be listed.
        """
        return x * 2

    def bprop_acts(self, x):
        """Ports: rel-a/src/kern.cu:9-11 Layer::bpropActs"""
        return x


def far_apart(x):
    """Ports: rel-b/src2/long.cu:40-60
    Ports: rel-b/src2/long.cu:2800-2820

    DIVERGES: a made-up reason that runs over two lines, with ``literal`` markup and a
    citation of long.cu:45-46 that links to the lines.
    """
    return x


LAYERS = {"conv": Layer}  # a made-up registry: cfg type -> the class that reads it


def checked(x):
    if x < 0:  # Port-only: a made-up check the original lacks, to be listed.
        raise ValueError(x)
    return x
