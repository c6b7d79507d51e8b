//! [`OrderTree`]: the ordered structure of one tier, a counted B+tree in an arena.
//!
//! Why a B+tree and not a skip list: items live in leaves of up to [`LEAF_CAP`] entries stored
//! contiguously, so a search touches about `log64(n)` cache-friendly nodes and each item costs
//! its own 40 bytes plus a share of a leaf, instead of a heap node with a tower of links and
//! spans. Every branch keeps, per child, the number of items below it; that turns "position of
//! a key" (rank) and "item at a position" (select) into one descent each: O(log n).
//!
//! * Separators: `seps[i]` is a lower bound of every key of `children[i + 1]` and above every
//!   key of `children[i]`. Removing an item may leave a separator that no longer exists as a
//!   key; it stays a valid bound.
//! * Leaves are chained (`next`) so a range reads on without another descent.
//! * Removal merges or rebalances a node that falls below a quarter full with a sibling, and
//!   the root shrinks when it has one child left, so the height stays logarithmic.
//! * Nodes are slots of one `Vec`, recycled through a free list; links are `u32` indexes.

/// Items per leaf before it splits.
pub(crate) const LEAF_CAP: usize = 64;
const BRANCH_CAP: usize = 64;
const LEAF_MIN: usize = LEAF_CAP / 4;
const BRANCH_MIN: usize = BRANCH_CAP / 4;
const NIL: u32 = u32::MAX;

/// One ranked score: its sort key and the slot of the entry that owns it.
#[derive(Clone, Debug)]
pub(crate) struct Item<K> {
    pub(crate) key: K,
    pub(crate) id: u32,
}

#[derive(Debug)]
struct Leaf<K> {
    items: Vec<Item<K>>,
    next: u32,
}

#[derive(Debug)]
struct Branch<K> {
    seps: Vec<K>,
    children: Vec<u32>,
    counts: Vec<u32>,
}

#[derive(Debug)]
enum Node<K> {
    Leaf(Leaf<K>),
    Branch(Branch<K>),
    Free,
}

/// An order-statistic tree of [`Item`]s sorted by their keys (unique, any [`Ord`] type):
/// insert, remove, rank and select in O(log n), ranges by walking the leaf chain.
#[derive(Debug)]
pub(crate) struct OrderTree<K> {
    nodes: Vec<Node<K>>,
    free: Vec<u32>,
    root: u32,
    len: usize,
}

/// The number of leading elements of `list` that satisfy `before` (a prefix), found by a
/// forward scan: nodes are a few cache lines of contiguous memory that the prefetcher streams
/// in, which beats the dependent misses of a binary search on large trees.
fn scan<T>(list: &[T], before: impl Fn(&T) -> bool) -> usize {
    list.iter().position(|x| !before(x)).unwrap_or(list.len())
}

fn new_leaf<K>() -> Leaf<K> {
    Leaf {
        items: Vec::with_capacity(LEAF_CAP + 1),
        next: NIL,
    }
}

impl<K: Ord + Clone> OrderTree<K> {
    /// An empty tree.
    pub(crate) fn new() -> OrderTree<K> {
        OrderTree {
            nodes: vec![Node::Leaf(Leaf {
                items: Vec::new(),
                next: NIL,
            })],
            free: Vec::new(),
            root: 0,
            len: 0,
        }
    }

    /// A tree holding `items`, which must be sorted by key and unique: built bottom-up with
    /// leaves filled to three quarters, in O(n).
    pub(crate) fn from_sorted(items: Vec<Item<K>>) -> OrderTree<K> {
        let mut tree = OrderTree {
            nodes: Vec::new(),
            free: Vec::new(),
            root: 0,
            len: items.len(),
        };
        if items.is_empty() {
            return OrderTree::new();
        }
        let per_leaf = LEAF_CAP * 3 / 4;
        // (node, first key, count) of the level being built.
        let mut level: Vec<(u32, K, u32)> = Vec::new();
        let mut iter = items.into_iter().peekable();
        while iter.peek().is_some() {
            let mut leaf = new_leaf();
            leaf.items.extend(iter.by_ref().take(per_leaf));
            let first = leaf.items[0].key.clone();
            let count = leaf.items.len() as u32;
            let id = tree.alloc(Node::Leaf(leaf));
            if let Some((prev, _, _)) = level.last() {
                if let Node::Leaf(p) = &mut tree.nodes[*prev as usize] {
                    p.next = id;
                }
            }
            level.push((id, first, count));
        }
        let per_branch = BRANCH_CAP * 3 / 4;
        while level.len() > 1 {
            let mut upper = Vec::new();
            let mut iter = level.into_iter().peekable();
            while iter.peek().is_some() {
                let group: Vec<_> = iter.by_ref().take(per_branch).collect();
                let mut b = Branch {
                    seps: Vec::with_capacity(BRANCH_CAP),
                    children: Vec::with_capacity(BRANCH_CAP + 1),
                    counts: Vec::with_capacity(BRANCH_CAP + 1),
                };
                let mut first = None;
                for (i, (node, key, count)) in group.into_iter().enumerate() {
                    if i == 0 {
                        first = Some(key);
                    } else {
                        b.seps.push(key);
                    }
                    b.children.push(node);
                    b.counts.push(count);
                }
                let count = b.counts.iter().sum();
                let id = tree.alloc(Node::Branch(b));
                if let Some(first) = first {
                    upper.push((id, first, count));
                }
            }
            level = upper;
        }
        tree.root = level[0].0;
        tree
    }

    /// The number of items.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    fn alloc(&mut self, node: Node<K>) -> u32 {
        match self.free.pop() {
            Some(i) => {
                self.nodes[i as usize] = node;
                i
            }
            None => {
                self.nodes.push(node);
                (self.nodes.len() - 1) as u32
            }
        }
    }

    fn release(&mut self, n: u32) {
        self.nodes[n as usize] = Node::Free;
        self.free.push(n);
    }

    fn count_of(&self, n: u32) -> u32 {
        match &self.nodes[n as usize] {
            Node::Leaf(l) => l.items.len() as u32,
            Node::Branch(b) => b.counts.iter().sum(),
            Node::Free => 0,
        }
    }

    fn branch_mut(&mut self, n: u32) -> &mut Branch<K> {
        match &mut self.nodes[n as usize] {
            Node::Branch(b) => b,
            _ => unreachable!("tree link to a non-branch node"),
        }
    }

    /// Inserts an item with a key not yet in the tree; returns its 0-based position.
    pub(crate) fn insert(&mut self, key: K, id: u32) -> usize {
        let root = self.root;
        let (pos, split) = self.insert_at(root, key, id);
        if let Some((sep, right)) = split {
            let (lc, rc) = (self.count_of(root), self.count_of(right));
            let mut b = Branch {
                seps: Vec::with_capacity(BRANCH_CAP),
                children: Vec::with_capacity(BRANCH_CAP + 1),
                counts: Vec::with_capacity(BRANCH_CAP + 1),
            };
            b.seps.push(sep);
            b.children.extend([root, right]);
            b.counts.extend([lc, rc]);
            self.root = self.alloc(Node::Branch(b));
        }
        self.len += 1;
        pos
    }

    fn insert_at(&mut self, n: u32, key: K, id: u32) -> (usize, Option<(K, u32)>) {
        let (child, ci, before) = match &mut self.nodes[n as usize] {
            Node::Leaf(leaf) => {
                let i = scan(&leaf.items, |it| it.key < key);
                leaf.items.insert(i, Item { key, id });
                if leaf.items.len() <= LEAF_CAP {
                    return (i, None);
                }
                let mut right = new_leaf();
                let mid = leaf.items.len() / 2;
                right.items.extend(leaf.items.drain(mid..));
                right.next = leaf.next;
                let sep = right.items[0].key.clone();
                let r = self.alloc(Node::Leaf(right));
                if let Node::Leaf(leaf) = &mut self.nodes[n as usize] {
                    leaf.next = r;
                }
                return (i, Some((sep, r)));
            }
            Node::Branch(b) => {
                let ci = scan(&b.seps, |s| *s <= key);
                let before: u32 = b.counts[..ci].iter().sum();
                (b.children[ci], ci, before as usize)
            }
            Node::Free => unreachable!("tree link to a free node"),
        };
        let (pos, split) = self.insert_at(child, key, id);
        let split_count = split.as_ref().map(|(_, r)| self.count_of(*r));
        let b = self.branch_mut(n);
        b.counts[ci] += 1;
        if let (Some((sep, right)), Some(rc)) = (split, split_count) {
            b.counts[ci] -= rc;
            b.seps.insert(ci, sep);
            b.children.insert(ci + 1, right);
            b.counts.insert(ci + 1, rc);
        }
        if b.children.len() <= BRANCH_CAP {
            return (before + pos, None);
        }
        let mid = b.children.len() / 2;
        let mut right = Branch {
            seps: Vec::with_capacity(BRANCH_CAP),
            children: Vec::with_capacity(BRANCH_CAP + 1),
            counts: Vec::with_capacity(BRANCH_CAP + 1),
        };
        right.children.extend(b.children.drain(mid..));
        right.counts.extend(b.counts.drain(mid..));
        right.seps.extend(b.seps.drain(mid..));
        let up = b.seps.pop();
        let r = self.alloc(Node::Branch(right));
        match up {
            Some(up) => (before + pos, Some((up, r))),
            None => unreachable!("a full branch has separators"),
        }
    }

    /// Removes the item with exactly `key`; returns its entry slot, or `None` if absent.
    pub(crate) fn remove(&mut self, key: &K) -> Option<u32> {
        let id = self.remove_at(self.root, key)?;
        self.len -= 1;
        if let Node::Branch(b) = &self.nodes[self.root as usize] {
            if b.children.len() == 1 {
                let old = self.root;
                self.root = b.children[0];
                self.release(old);
            }
        }
        Some(id)
    }

    fn remove_at(&mut self, n: u32, key: &K) -> Option<u32> {
        let (child, ci) = match &mut self.nodes[n as usize] {
            Node::Leaf(leaf) => {
                let i = scan(&leaf.items, |it| it.key < *key);
                if leaf.items.get(i).is_none_or(|it| it.key != *key) {
                    return None;
                }
                return Some(leaf.items.remove(i).id);
            }
            Node::Branch(b) => {
                let ci = scan(&b.seps, |s| s <= key);
                (b.children[ci], ci)
            }
            Node::Free => unreachable!("tree link to a free node"),
        };
        let id = self.remove_at(child, key)?;
        self.branch_mut(n).counts[ci] -= 1;
        let underfull = match &self.nodes[child as usize] {
            Node::Leaf(l) => l.items.len() < LEAF_MIN,
            Node::Branch(b) => b.children.len() < BRANCH_MIN,
            Node::Free => false,
        };
        if underfull {
            self.rebalance(n, ci);
        }
        Some(id)
    }

    /// Merges child `ci` of branch `n` with a neighbour, or evens out their sizes.
    fn rebalance(&mut self, n: u32, ci: usize) {
        let b = self.branch_mut(n);
        if b.children.len() < 2 {
            return;
        }
        let l = if ci + 1 < b.children.len() {
            ci
        } else {
            ci - 1
        };
        let (left, right) = (b.children[l], b.children[l + 1]);
        let parent_sep = b.seps[l].clone();
        let mut right_node = std::mem::replace(&mut self.nodes[right as usize], Node::Free);
        let merged = match (&mut self.nodes[left as usize], &mut right_node) {
            (Node::Leaf(a), Node::Leaf(z)) => {
                let total = a.items.len() + z.items.len();
                if total <= LEAF_CAP {
                    a.items.append(&mut z.items);
                    a.next = z.next;
                    None
                } else {
                    let target = total / 2;
                    if a.items.len() < target {
                        let k = target - a.items.len();
                        a.items.extend(z.items.drain(..k));
                    } else {
                        let k = a.items.len() - target;
                        let moved: Vec<Item<K>> = a.items.drain(target..).collect();
                        debug_assert_eq!(moved.len(), k);
                        z.items.splice(0..0, moved);
                    }
                    Some((
                        z.items[0].key.clone(),
                        target as u32,
                        (total - target) as u32,
                    ))
                }
            }
            (Node::Branch(a), Node::Branch(z)) => {
                let total = a.children.len() + z.children.len();
                if total <= BRANCH_CAP {
                    a.seps.push(parent_sep);
                    a.seps.append(&mut z.seps);
                    a.children.append(&mut z.children);
                    a.counts.append(&mut z.counts);
                    None
                } else {
                    let target = total / 2;
                    let mut sep = parent_sep;
                    while a.children.len() < target {
                        a.seps.push(std::mem::replace(&mut sep, z.seps.remove(0)));
                        a.children.push(z.children.remove(0));
                        a.counts.push(z.counts.remove(0));
                    }
                    while a.children.len() > target {
                        if let (Some(s), Some(c), Some(k)) =
                            (a.seps.pop(), a.children.pop(), a.counts.pop())
                        {
                            z.seps.insert(0, std::mem::replace(&mut sep, s));
                            z.children.insert(0, c);
                            z.counts.insert(0, k);
                        }
                    }
                    Some((sep, a.counts.iter().sum(), z.counts.iter().sum()))
                }
            }
            _ => unreachable!("siblings of different kinds"),
        };
        let b = self.branch_mut(n);
        match merged {
            None => {
                let rc = b.counts.remove(l + 1);
                b.counts[l] += rc;
                b.children.remove(l + 1);
                b.seps.remove(l);
                self.free.push(right);
            }
            Some((sep, lc, rc)) => {
                b.seps[l] = sep;
                b.counts[l] = lc;
                b.counts[l + 1] = rc;
                self.nodes[right as usize] = right_node;
            }
        }
    }

    /// The number of items whose key sorts before `key` (the position `key` would take).
    pub(crate) fn position(&self, key: &K) -> usize {
        let mut n = self.root;
        let mut pos = 0usize;
        loop {
            match &self.nodes[n as usize] {
                Node::Leaf(leaf) => return pos + scan(&leaf.items, |it| it.key < *key),
                Node::Branch(b) => {
                    let ci = scan(&b.seps, |s| s <= key);
                    pos += b.counts[..ci].iter().sum::<u32>() as usize;
                    n = b.children[ci];
                }
                Node::Free => return pos,
            }
        }
    }

    /// The items from 0-based position `pos` on, in order.
    pub(crate) fn iter_from(&self, pos: usize) -> Iter<'_, K> {
        if pos >= self.len {
            return Iter {
                tree: self,
                leaf: NIL,
                off: 0,
            };
        }
        let mut n = self.root;
        let mut rest = pos;
        loop {
            match &self.nodes[n as usize] {
                Node::Leaf(_) => {
                    return Iter {
                        tree: self,
                        leaf: n,
                        off: rest,
                    }
                }
                Node::Branch(b) => {
                    let mut ci = 0;
                    while ci + 1 < b.counts.len() && rest >= b.counts[ci] as usize {
                        rest -= b.counts[ci] as usize;
                        ci += 1;
                    }
                    n = b.children[ci];
                }
                Node::Free => {
                    return Iter {
                        tree: self,
                        leaf: NIL,
                        off: 0,
                    }
                }
            }
        }
    }

    /// Checks every structural invariant (test helper); returns the number of items.
    #[cfg(test)]
    pub(crate) fn check(&self) -> usize {
        fn walk<K: Ord + Clone>(t: &OrderTree<K>, n: u32, lo: Option<&K>, hi: Option<&K>) -> usize {
            match &t.nodes[n as usize] {
                Node::Leaf(l) => {
                    for w in l.items.windows(2) {
                        assert!(w[0].key < w[1].key);
                    }
                    for it in &l.items {
                        assert!(lo.is_none_or(|lo| *lo <= it.key));
                        assert!(hi.is_none_or(|hi| it.key < *hi));
                    }
                    l.items.len()
                }
                Node::Branch(b) => {
                    assert_eq!(b.seps.len() + 1, b.children.len());
                    assert_eq!(b.counts.len(), b.children.len());
                    let mut sum = 0;
                    for (i, &c) in b.children.iter().enumerate() {
                        let clo = if i == 0 { lo } else { Some(&b.seps[i - 1]) };
                        let chi = if i + 1 == b.children.len() {
                            hi
                        } else {
                            Some(&b.seps[i])
                        };
                        let got = walk(t, c, clo, chi);
                        assert_eq!(got, b.counts[i] as usize);
                        sum += got;
                    }
                    sum
                }
                Node::Free => panic!("link to a free node"),
            }
        }
        let n = walk(self, self.root, None, None);
        assert_eq!(n, self.len);
        assert_eq!(self.iter_from(0).count(), self.len);
        n
    }
}

/// An iterator over a tree's items in order, following the leaf chain.
pub(crate) struct Iter<'a, K> {
    tree: &'a OrderTree<K>,
    leaf: u32,
    off: usize,
}

impl<'a, K> Iterator for Iter<'a, K> {
    type Item = &'a Item<K>;

    fn next(&mut self) -> Option<&'a Item<K>> {
        while self.leaf != NIL {
            let Node::Leaf(leaf) = &self.tree.nodes[self.leaf as usize] else {
                return None;
            };
            if let Some(it) = leaf.items.get(self.off) {
                self.off += 1;
                return Some(it);
            }
            self.leaf = leaf.next;
            self.off = 0;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::score::{Score, SortKey};
    use proptest::prelude::*;

    fn key(score: i64, seq: u64) -> SortKey {
        SortKey {
            score: Score::Int(score),
            seq,
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        #[test]
        fn matches_a_sorted_vec(ops in prop::collection::vec((any::<bool>(), 0i64..300, 0usize..40), 1..1500)) {
            let mut tree = OrderTree::new();
            let mut model: Vec<SortKey> = Vec::new();
            for (seq, (ins, score, pick)) in ops.into_iter().enumerate() {
                if ins || model.is_empty() {
                    let k = key(score, seq as u64);
                    let at = model.partition_point(|m| *m < k);
                    model.insert(at, k.clone());
                    prop_assert_eq!(tree.insert(k, seq as u32), at);
                } else {
                    let k = model.remove(pick % model.len());
                    prop_assert!(tree.remove(&k).is_some());
                    prop_assert!(tree.remove(&k).is_none());
                }
                let probe = SortKey::head_of(&Score::Int(score));
                prop_assert_eq!(tree.position(&probe), model.partition_point(|m| *m < probe));
            }
            tree.check();
            let got: Vec<SortKey> = tree.iter_from(0).map(|i| i.key.clone()).collect();
            prop_assert_eq!(&got, &model);
            if !model.is_empty() {
                let p = model.len() / 3;
                prop_assert_eq!(&tree.iter_from(p).next().map(|i| i.key.clone()), &model.get(p).cloned());
            }
        }
    }

    #[test]
    fn bulk_build_then_shrink_to_nothing() {
        let items: Vec<Item<SortKey>> = (0..10_000u64)
            .map(|i| Item {
                key: key(10_000 - i as i64, i),
                id: i as u32,
            })
            .collect();
        let mut tree = OrderTree::from_sorted(items.clone());
        assert_eq!(tree.check(), 10_000);
        for (n, it) in items.iter().enumerate().rev() {
            assert_eq!(tree.remove(&it.key), Some(it.id));
            if n % 997 == 0 {
                tree.check();
            }
        }
        assert_eq!(tree.check(), 0);
        tree.insert(key(1, 1), 7);
        assert_eq!(tree.iter_from(0).next().map(|i| i.id), Some(7));
    }
}
