//! The call graph inside an object: its cycles (recursion) and its deepest
//! chain of frames.

use std::collections::BTreeSet;

/// Nodes are function indices; `edges[f]` are the functions `f` calls,
/// jumps to or takes the address of.
pub struct Graph {
    pub edges: Vec<BTreeSet<usize>>,
}

impl Graph {
    pub fn new(n: usize) -> Graph {
        Graph {
            edges: vec![BTreeSet::new(); n],
        }
    }

    /// The cycles: strongly connected components of more than one node,
    /// and nodes that reach themselves directly (Tarjan's algorithm,
    /// iterative so that no input can overflow this program's stack).
    pub fn cycles(&self) -> Vec<Vec<usize>> {
        let n = self.edges.len();
        let mut index = vec![usize::MAX; n];
        let mut low = vec![0; n];
        let mut on_stack = vec![false; n];
        let mut stack = Vec::new();
        let mut next = 0;
        let mut out = Vec::new();
        let succ: Vec<Vec<usize>> = self
            .edges
            .iter()
            .map(|e| e.iter().copied().collect())
            .collect();

        for root in 0..n {
            if index[root] != usize::MAX {
                continue;
            }
            // (node, next successor to visit)
            let mut work = vec![(root, 0usize)];
            index[root] = next;
            low[root] = next;
            next += 1;
            stack.push(root);
            on_stack[root] = true;
            while let Some(&mut (v, ref mut k)) = work.last_mut() {
                if *k < succ[v].len() {
                    let w = succ[v][*k];
                    *k += 1;
                    if index[w] == usize::MAX {
                        index[w] = next;
                        low[w] = next;
                        next += 1;
                        stack.push(w);
                        on_stack[w] = true;
                        work.push((w, 0));
                    } else if on_stack[w] {
                        low[v] = low[v].min(index[w]);
                    }
                    continue;
                }
                work.pop();
                if let Some(&(parent, _)) = work.last() {
                    low[parent] = low[parent].min(low[v]);
                }
                if low[v] == index[v] {
                    let mut scc = Vec::new();
                    while let Some(w) = stack.pop() {
                        on_stack[w] = false;
                        scc.push(w);
                        if w == v {
                            break;
                        }
                    }
                    if scc.len() > 1 || self.edges[v].contains(&v) {
                        scc.sort_unstable();
                        out.push(scc);
                    }
                }
            }
        }
        out.sort();
        out
    }

    /// The deepest chain of frames from any function: each function on it
    /// costs `cost[f]` (its frame and the return address its caller
    /// pushed).  Only meaningful without cycles (edges closing a cycle are
    /// not followed).  Returns the total and the chain.
    pub fn deepest_chain(&self, cost: &[u64]) -> (u64, Vec<usize>) {
        let n = self.edges.len();
        // memo[f] = (depth from f, next function on the deepest path)
        let mut memo: Vec<Option<(u64, Option<usize>)>> = vec![None; n];
        let mut visiting = vec![false; n];
        for root in 0..n {
            let mut work = vec![(root, false)];
            while let Some((v, expanded)) = work.pop() {
                if memo[v].is_some() {
                    continue;
                }
                if !expanded {
                    visiting[v] = true;
                    work.push((v, true));
                    for &w in &self.edges[v] {
                        if memo[w].is_none() && !visiting[w] {
                            work.push((w, false));
                        }
                    }
                    continue;
                }
                let best = self.edges[v]
                    .iter()
                    .filter_map(|&w| memo[w].map(|(d, _)| (d, w)))
                    .max();
                memo[v] = Some(match best {
                    Some((d, w)) => (cost[v] + d, Some(w)),
                    None => (cost[v], None),
                });
                visiting[v] = false;
            }
        }
        let Some(start) = (0..n).max_by_key(|&v| memo[v].map_or(0, |(d, _)| d)) else {
            return (0, Vec::new());
        };
        let total = memo[start].map_or(0, |(d, _)| d);
        let mut chain = vec![start];
        let mut v = start;
        while let Some((_, Some(w))) = memo[v] {
            if chain.contains(&w) {
                break;
            }
            chain.push(w);
            v = w;
        }
        (total, chain)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph(n: usize, edges: &[(usize, usize)]) -> Graph {
        let mut g = Graph::new(n);
        for &(a, b) in edges {
            g.edges[a].insert(b);
        }
        g
    }

    #[test]
    fn finds_self_and_mutual_recursion() {
        let g = graph(5, &[(0, 1), (1, 2), (2, 1), (3, 3), (4, 0)]);
        assert_eq!(g.cycles(), vec![vec![1, 2], vec![3]]);
        assert!(graph(3, &[(0, 1), (1, 2), (0, 2)]).cycles().is_empty());
    }

    #[test]
    fn deepest_chain_sums_frames() {
        let g = graph(4, &[(0, 1), (1, 2), (0, 3)]);
        let (total, chain) = g.deepest_chain(&[10, 20, 30, 100]);
        assert_eq!((total, chain), (110, vec![0, 3]));
    }
}
