"""The tree softmax layer ``treefc``: an fc layer whose output unit for class c has the weight
vector Σ_{u on the path root → c} w_u, the sum of its own and its ancestors' vectors in a class
tree (softmaxtree.cu).

The tree is the data provider's ``batches.meta['tree']`` (a list, node label → its children's
labels) rooted at ``meta['all_wnids']['gproot']``, read as TreeFCLayer::makeTree reads it: from
the root down, following the children lists. The leaves are the classes 0…C−1 (the first C
columns of the weight matrix); the other labels are the inner nodes.

Layout: weights W (D, nodes), every node's vector a column, y = W_effᵀ x + bᵀ with W_eff the
leaf columns of the path sums; biases (1, C). Gradients are the descent direction −∂L/∂·
(port/gradients.py).
"""
from __future__ import annotations

import numpy as np

from port.backend import get_array_module, to_device
from port.errors import UserError
from port.layers.base import PASS_GC
from port.layers.weight import FCLayer
from port.lr import make_schedule
from port.weights import Weights


DEFAULT_SCHEDULE = {"type": "default", "params": {}}


class SoftmaxTree:
    """The class tree: parents, depths, leaf counts, and the index arrays of the two sweeps.

    Ports: alexnet-2012/src/softmaxtree.cu:150-167 SoftmaxNode::setDistances
    Ports: alexnet-2012/src/softmaxtree.cu:316-322 SoftmaxTree::finalize
    """

    def __init__(self, tree: list, root: int, num_leaves: int, where: str = "treefc"):
        n = len(tree)
        if not 0 <= root < n:
            raise UserError(f"{where}: the tree's root label {root} is not a node of the tree ({n} nodes)")
        parent = np.full(n, -1, dtype=np.int64)
        depth = np.full(n, -1, dtype=np.int64)
        depth[root] = 0
        order, stack = [], [root]
        while stack:                                   # makeTree: from the root down
            v = stack.pop()
            order.append(v)
            for c in tree[v]:
                c = int(c)
                if not 0 <= c < n or depth[c] >= 0:
                    raise UserError(f"{where}: the tree's node {v} lists child {c}, which is not a "
                                    f"node or is reached twice (the tree has {n} nodes)")
                parent[c], depth[c] = v, depth[v] + 1
                stack.append(c)
        if len(order) != n:
            missing = int(np.flatnonzero(depth < 0)[0])
            raise UserError(f"{where}: node {missing} is not reachable from the root {root} "
                            "(the update kernel assumes the labels 0…nodes−1 all lie in the tree)")
        leaves = [v for v in range(n) if len(tree[v]) == 0]
        if leaves != list(range(num_leaves)):
            raise UserError(f"{where}: the tree's leaves must be the classes 0…{num_leaves - 1}; "
                            f"it has {len(leaves)} leaves")
        self.num_nodes, self.num_leaves, self.root = n, num_leaves, root
        self.parent, self.depth = parent, depth
        size = np.zeros(n, dtype=np.int64)             # leaves under each node (setSizes)
        for v in reversed(order):
            size[v] += len(tree[v]) == 0
            if parent[v] >= 0:
                size[parent[v]] += size[v]
        self.size = size
        # Forward sweep: by depth, nodes and their parents (setFwdMeta).
        by_depth = np.argsort(depth, kind="stable")
        self.fwd = [(by_depth[depth[by_depth] == d], parent[by_depth[depth[by_depth] == d]])
                    for d in range(1, int(depth.max()) + 1)]
        # Backward sweep: inner nodes sum their children, deepest first; children sorted by
        # parent so that a cumulative sum gives each parent's segment sum.
        self.bwd = []
        for d in range(int(depth.max()) - 1, -1, -1):
            kids = np.flatnonzero((depth == d + 1))
            kids = kids[np.argsort(parent[kids], kind="stable")]
            parents, starts = np.unique(parent[kids], return_index=True)
            ends = np.append(starts[1:], len(kids))
            self.bwd.append((kids, parents, starts, ends))

    def make_weights(self, w):
        """Path sums: eff[:, v] = w[:, v] + eff[:, parent(v)], root first (kSoftmaxTreeFwd).

        Ports: alexnet-2012/src/softmaxtree.cu:359-379 SoftmaxTree::makeWeights
        """
        eff = w.copy()                                               # (D, nodes)
        for nodes, parents in self.fwd:
            eff[:, nodes] = w[:, nodes] + eff[:, parents]
        return eff

    def distribute_gradients(self, grad):
        """Every inner node's gradient := the sum of its children's, deepest nodes first, so that
        a node ends with the sum over the leaves below it (kSoftmaxTreeBwd).

        Ports: alexnet-2012/src/softmaxtree.cu:389-403 SoftmaxTree::distributeGradients
        """
        xp = get_array_module(grad)
        grad = grad.copy()                                           # (D, nodes)
        for kids, parents, starts, ends in self.bwd:
            c = xp.cumsum(grad[:, kids].astype(np.float64), axis=1)  # (D, kids)
            c = xp.concatenate([xp.zeros((c.shape[0], 1)), c], axis=1)
            grad[:, parents] = (c[:, ends] - c[:, starts]).astype(grad.dtype)
        return grad


class TreeWeights(Weights):
    """The (D, nodes) matrix of node vectors; ``w`` is the leaves' path-sum matrix (D, C).

    The update distributes the leaves' gradient up the tree, then steps every node with
    ε/size and wc/size (size = leaves below it), then recomputes the path sums.

    Ports: alexnet-2012/src/weights.cu:255-318 TreeWeights
    """

    def __init__(self, tree: SoftmaxTree, host_w, host_inc, schedule, base_rate, wc, mom, dtype):
        super().__init__(host_w, host_inc, schedule, base_rate, wc, 0.0, mom, 0.0, True, dtype=dtype)
        self.tree = tree
        self.all_w = self.all_inc = self.all_grad = None

    def copy_to_gpu(self) -> None:
        """Ports: alexnet-2012/src/weights.cu:285-295 TreeWeights::copyToGPU"""
        super().copy_to_gpu()
        self.all_w, self.all_inc, self.all_grad = self._w, self._inc, self._grad
        xp = get_array_module(self.all_w)
        self.sizes = xp.asarray(self.tree.size.reshape(1, -1), dtype=self.all_w.dtype)  # (1, nodes)
        self.make_weights()

    def copy_to_cpu(self) -> None:
        """Ports: alexnet-2012/src/weights.cu:99-105 Weights::copyToCPU"""
        self._w, self._inc = self.all_w, self.all_inc
        super().copy_to_cpu()
        self.make_weights()

    def make_weights(self) -> None:
        """Ports: alexnet-2012/src/weights.cu:312-314 TreeWeights::makeWeights"""
        C = self.tree.num_leaves
        self._w = self.tree.make_weights(self.all_w)[:, :C]          # (D, C)
        self._inc = self.all_inc[:, :C]

    def accumulate(self, grad_sum, num_cases, gc, progress) -> None:
        """The leaves' gradient lands in the first C columns of the node gradient."""
        C = self.tree.num_leaves
        g = grad_sum if gc else grad_sum * (1.0 / num_cases)
        if self.get_num_updates() > 0:
            g = self.all_grad[:, :C] + g
        self.all_grad = self.all_grad.copy()
        self.all_grad[:, :C] = g
        self._grad = self.all_grad[:, :C]
        self.inc_num_updates()

    def distribute_gradients(self) -> None:
        """Ports: alexnet-2012/src/weights.cu:316-318 TreeWeights::distributeGradients"""
        self.all_grad = self.tree.distribute_gradients(self.all_grad)

    def update(self, progress: float) -> None:
        """inc = mom·inc + (ε/size)(grad − (wc/size)·w); w += inc; then the path sums.

        Ports: alexnet-2012/src/weights.cu:301-310 TreeWeights::update
        Ports: alexnet-2012/src/softmaxtree.cu:119-143 kSoftmaxTreeUpdateWeights
        """
        if self.base_rate <= 0:
            return
        self.distribute_gradients()
        eps = self.get_eps(progress) / self.sizes
        wc = self.wc / self.sizes
        self.all_inc = self.mom * self.all_inc + eps * (self.all_grad - wc * self.all_w)
        self.all_w = self.all_w + self.all_inc
        self.make_weights()
        self._num_updates = 0


class _AllNodes:
    """The view the gradient check perturbs: every node's vector and its distributed gradient.

    Ports: alexnet-2012/src/weights.cu:325-332 DummyWeights::DummyWeights
    """

    def __init__(self, tw: TreeWeights):
        self.tw = tw

    @property
    def w(self):
        return self.tw.all_w

    @property
    def grad(self):
        return self.tw.all_grad

    def is_owner(self) -> bool:
        return True

    @property
    def base_rate(self) -> float:
        return self.tw.base_rate


class TreeFCLayer(FCLayer):
    """``treefc``: fc over the class tree's path sums; gradient-check step 0.001 for weights,
    which checks every node's vector (a gradient-check forward pass rebuilds the path sums).
    Weights and biases both learn at a constant rate (their ``epsW``/``epsB``: ``schedW`` and
    ``schedB`` are not read) and without superEps, as the original's.

    Ports: alexnet-2012/src/layer.cu:694-726 TreeFCLayer::TreeFCLayer
    """

    def __init__(self, dic: dict, net):
        super().__init__(dic, net, use_grad=True)
        if dic.get("tree") is None:
            raise UserError(f"layer '{self.name}': treefc needs the data provider's class tree "
                            "(batches.meta['tree'])")
        self.tree = SoftmaxTree(dic["tree"], int(dic["rootLabel"]), int(dic["outputs"]),
                                where=f"layer '{self.name}'")
        w = self.weights[0]
        # "This class does not support learning rate schedules for now": a constant rate.
        self.tree_weights = TreeWeights(self.tree, w.host_w, w.host_inc,
                                        make_schedule(DEFAULT_SCHEDULE, w.base_rate, net.rng),
                                        w.base_rate, w.wc, w.mom, net.dtype)
        self.weights[0] = self.tree_weights
        # The biases too, made again as the original makes them: a constant rate and superEps 0,
        # whatever the cfg's schedB and superEps say (weight decay and ball 0, use_grad).
        b = self.biases
        self.biases = Weights(b.host_w, b.host_inc,
                              make_schedule(DEFAULT_SCHEDULE, b.base_rate, net.rng), b.base_rate,
                              0.0, 0.0, b.mom, 0.0, True, dtype=net.dtype)
        self.w_step = 0.001

    def fprop_acts(self, inp_idx, scale_targets, pass_type):
        """Ports: alexnet-2012/src/layer.cu:738-743 TreeFCLayer::fpropActs"""
        if pass_type == PASS_GC:
            self.tree_weights.make_weights()
        super().fprop_acts(inp_idx, scale_targets, pass_type)

    def bprop_common(self, v, pass_type):
        """The gradients, then (gradient check) their distribution up the tree.

        DIVERGES: the original distributes in bpropActs, which does not run when no layer below
        consumes gradients; here it follows the weight gradient whatever lies below.

        Ports: alexnet-2012/src/layer.cu:745-750 TreeFCLayer::bpropActs
        """
        super().bprop_common(v, pass_type)
        if pass_type == PASS_GC:
            self.tree_weights.distribute_gradients()

    def constrain_weights(self) -> None:
        """Ports: alexnet-2012/src/layer.cu:752-753 TreeFCLayer::constrainWeights"""

    def check_gradients(self) -> None:
        """Ports: alexnet-2012/src/layer.cu:755-761 TreeFCLayer::checkGradients"""
        self.net.check_gradient(f"{self.name} weights", self.w_step, _AllNodes(self.tree_weights))
        self.net.check_gradient(f"{self.name} biases", self.b_step, self.biases)

    def gc_weights(self) -> list:
        """The matrices a gradient check perturbs: every node's vector, and the biases."""
        return [_AllNodes(self.tree_weights), self.biases]

    def num_params(self) -> int:
        return int(self.tree_weights.host_w.size + self.biases.host_w.size)


__all__ = ["SoftmaxTree", "TreeWeights", "TreeFCLayer"]
