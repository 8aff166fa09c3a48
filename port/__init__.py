"""A Python 3 port of the 2012 AlexNet code (cuda-convnet, as released by the Computer History
Museum in 2025), running on NumPy (CPU) or CuPy (NVIDIA GPUs).

File names follow the original's: ``port/layer.py`` is the twin of the released ``layer.py``,
``port/convnet.py`` of ``convnet.py``, and so on. Every ported function carries ``Ports:`` lines
naming the original lines it ports (see ``archive/xref.py``).
"""
