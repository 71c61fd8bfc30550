//! The grid being published: primary suppression, then repairs (line sums, free cycles)
//! until nothing is recoverable.

use super::{Cell, Line, Published, Table, entries};

/// What a hidden entry needs for rule 4.
enum Repair {
    /// It can already move.
    Free,
    /// Hiding these shown entries lets it move.
    Hide(Vec<(usize, usize)>),
    /// No closed walk through it at all (impossible: see the module doc).
    Stuck,
}

/// The true table with its margins, and which entries are hidden.
pub(super) struct Grid {
    r: usize,
    c: usize,
    value: Vec<Vec<u64>>,
    hidden: Vec<Vec<bool>>,
}

impl Grid {
    /// The table with its margins, with the counts below `threshold` hidden (rule 1).
    pub(super) fn new(table: &Table, threshold: u64) -> Self {
        let (r, c) = (table.rows.len(), table.columns.len());
        let mut value = vec![vec![0u64; c + 1]; r + 1];
        for (i, counts) in table.counts.iter().enumerate() {
            for (j, &n) in counts.iter().enumerate() {
                // No overflow: Table::new checked the district total.
                value[i][j] = n;
                value[i][c] += n;
                value[r][j] += n;
                value[r][c] += n;
            }
        }
        let hidden = value
            .iter()
            .map(|line| line.iter().map(|&n| 0 < n && n < threshold).collect())
            .collect();
        Self {
            r,
            c,
            value,
            hidden,
        }
    }

    pub(super) fn published(&self) -> Published {
        let (r, c) = (self.r, self.c);
        let cell = |i: usize, j: usize| {
            if self.hidden[i][j] {
                Cell::Suppressed
            } else {
                Cell::Shown(self.value[i][j])
            }
        };
        Published {
            cells: (0..r)
                .map(|i| (0..c).map(|j| cell(i, j)).collect())
                .collect(),
            row_totals: (0..r).map(|i| cell(i, c)).collect(),
            column_totals: (0..c).map(|j| cell(r, j)).collect(),
            total: cell(r, c),
        }
    }

    pub(super) fn hide_all_nonzero(&mut self) {
        for (values, hidden) in self.value.iter().zip(&mut self.hidden) {
            for (&n, hidden) in values.iter().zip(hidden) {
                *hidden = n > 0;
            }
        }
    }

    /// Applies rules 3 and 4 until neither hides anything more. Each pass that changes anything
    /// hides at least one more non-zero entry, so this ends.
    pub(super) fn protect(&mut self, threshold: u64) {
        loop {
            let mut changed = self.enforce_line_sums(threshold);
            for (i, j) in entries(self.r, self.c) {
                if !self.hidden[i][j] {
                    continue;
                }
                match self.repair((i, j)) {
                    Repair::Free => {}
                    Repair::Hide(shown) => {
                        for (a, b) in shown {
                            self.hidden[a][b] = true;
                        }
                        changed = true;
                    }
                    Repair::Stuck => {
                        self.hide_all_nonzero();
                        return;
                    }
                }
            }
            if !changed {
                return;
            }
        }
    }

    /// Rule 3: in each line with a shown total, the hidden parts sum to 0 or at least
    /// `threshold`; otherwise the smallest shown non-zero part (first by position) is hidden.
    /// There is one: were every shown part 0, the hidden parts would sum to the shown total,
    /// which rule 1 keeps out of 1..threshold. Returns whether anything was hidden.
    fn enforce_line_sums(&mut self, threshold: u64) -> bool {
        let (r, c) = (self.r, self.c);
        let mut changed = false;
        for line in Line::all(r, c) {
            let (ti, tj) = line.total(r, c);
            if self.hidden[ti][tj] {
                continue;
            }
            let hidden_sum: u64 = line
                .parts(r, c)
                .filter(|&(i, j)| self.hidden[i][j])
                .map(|(i, j)| self.value[i][j])
                .sum();
            if hidden_sum == 0 || hidden_sum >= threshold {
                continue;
            }
            let smallest = line
                .parts(r, c)
                .filter(|&(i, j)| !self.hidden[i][j] && self.value[i][j] > 0)
                .min_by_key(|&(i, j)| (self.value[i][j], i, j));
            if let Some((i, j)) = smallest {
                self.hidden[i][j] = true;
                changed = true;
            }
        }
        changed
    }

    /// Rule 4 for the hidden entry `k`: free, or the cheapest shown entries to hide so that it
    /// is. Tries raising `k` and, if it is 2 or more, lowering it; the cheaper walk wins (raising
    /// on a tie).
    fn repair(&self, k: (usize, usize)) -> Repair {
        let up = self.cheapest_walk(k, true);
        let down = if self.value[k.0][k.1] >= 2 {
            self.cheapest_walk(k, false)
        } else {
            None
        };
        let best = match (up, down) {
            (Some(up), Some(down)) => Some(if down.0 < up.0 { down } else { up }),
            (up, down) => up.or(down),
        };
        match best {
            None => Repair::Stuck,
            Some((0, _)) => Repair::Free,
            Some((_, walk)) => Repair::Hide(
                walk.into_iter()
                    .filter(|&(i, j)| !self.hidden[i][j])
                    .collect(),
            ),
        }
    }

    /// Whether raising entry (i,j) by one is the step from its grid row's node to its grid
    /// column's node. Inner cells and the grand total step that way, the other margins the
    /// other way: with the margins' signs flipped every line sums to zero, and the signed
    /// table is a circulation from row nodes to column nodes.
    fn up_from_row(&self, i: usize, j: usize) -> bool {
        (i < self.r) == (j < self.c)
    }

    /// The cheapest closed walk that raises (`up`) or lowers entry `k` and keeps every line
    /// equation, as (cost, entries other than `k` on it). Steps: raising any non-zero entry,
    /// lowering one of 2 or more; a hidden entry costs 0, a shown one its value. Zeros take no
    /// part: they are shown and stay so. Dijkstra over the r+c+2 line nodes (row i is node i,
    /// column j node r+1+j), lowest node first on ties.
    fn cheapest_walk(&self, k: (usize, usize), up: bool) -> Option<(u128, Vec<(usize, usize)>)> {
        let (r, c) = (self.r, self.c);
        let (row_node, col_node) = (k.0, r + 1 + k.1);
        // The step across k goes from `from` to `to`; the walk returns from `to` to `from`.
        let (from, to) = if self.up_from_row(k.0, k.1) == up {
            (row_node, col_node)
        } else {
            (col_node, row_node)
        };
        let nodes = r + c + 2;
        let mut dist: Vec<Option<u128>> = vec![None; nodes];
        let mut via: Vec<Option<(usize, (usize, usize))>> = vec![None; nodes];
        let mut done = vec![false; nodes];
        dist[to] = Some(0);
        loop {
            let (d, u) = (0..nodes)
                .filter(|&u| !done[u])
                .filter_map(|u| dist[u].map(|d| (d, u)))
                .min()?;
            if u == from {
                break;
            }
            done[u] = true;
            // The entries on line u, each with the node at its other end and whether stepping
            // from u across it raises it.
            let steps: Vec<((usize, usize), usize, bool)> = if u <= r {
                (0..=c)
                    .map(|j| ((u, j), r + 1 + j, self.up_from_row(u, j)))
                    .collect()
            } else {
                let j = u - r - 1;
                (0..=r)
                    .map(|i| ((i, j), i, !self.up_from_row(i, j)))
                    .collect()
            };
            for ((i, j), w, raises) in steps {
                let n = self.value[i][j];
                if (i, j) == k || n == 0 || (!raises && n < 2) {
                    continue;
                }
                let cost = if self.hidden[i][j] { 0 } else { u128::from(n) };
                let candidate = d + cost;
                if dist[w].is_none_or(|old| candidate < old) {
                    dist[w] = Some(candidate);
                    via[w] = Some((u, (i, j)));
                }
            }
        }
        let mut walk = Vec::new();
        let mut node = from;
        while let Some((previous, entry)) = via[node] {
            walk.push(entry);
            node = previous;
        }
        Some((dist[from].unwrap_or(0), walk))
    }
}
