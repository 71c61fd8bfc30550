//! Small-count suppression (小数抑制) for open count tables, with complementary suppression.
//!
//! The open dataset "care counts per community and category" gives, per district, the number
//! of active key-population records (drug rehabilitation, severe mental disorder, elderly in
//! hardship, left-behind children) per community and category: a [`Table`] with one row per
//! community and one column per category. [`publish`] adds the margins and decides what to hide:
//!
//! ```text
//!              category 0 … category c-1 │ community total
//! community 0   (0,0)     …  (0,c-1)     │ (0,c)
//! …                                      │
//! community r-1 (r-1,0)   …  (r-1,c-1)   │ (r-1,c)
//! ───────────────────────────────────────┼────────────────
//! district      (r,0)     …  (r,c-1)     │ (r,c)  grand total
//! ```
//!
//! Entries are named by their place in this (r+1)×(c+1) grid, margins included. Each grid row
//! and each grid column is a *line*: its parts (the entries off the margin) sum to its total
//! (the entry on the margin). Those r+c+2 equations are everything anyone knows about how the
//! published numbers hang together.
//!
//! # Rules
//!
//! 1. **Primary.** A count `n` with `0 < n < threshold` (default [`DEFAULT_THRESHOLD`]) is
//!    hidden, whether a cell or a total: a community total of 3 identifies as much as a cell
//!    of 3. A threshold of 0 or 1 hides nothing.
//! 2. **Zeros are always shown.** A zero says "nobody", which identifies no one, and statistical
//!    practice publishes it. The price: since only non-zero values are ever hidden, anyone can
//!    tell that a hidden value is at least 1, which narrows it. Rules 3 and 4 are stated against
//!    an attacker who knows this.
//! 3. **Line sums.** In a line whose total is shown, the total minus the shown parts is the sum
//!    of the hidden parts, and anyone can compute it. It counts a real group (say, the people
//!    of one community in the hidden categories), so it is held to rule 1: it must be 0 or at
//!    least the threshold. If it isn't, the line's smallest shown non-zero part is also hidden
//!    (every shown non-zero value is at least the threshold, so one is enough). Without this
//!    rule, two hidden 1s in a row whose total is shown would add up to a published 2, and the
//!    attacker, who knows each is at least 1, would know both.
//! 4. **Freedom.** Every hidden value must take a different value in some other table that
//!    agrees with everything shown, satisfies every line equation, and has every hidden value a
//!    whole number of at least 1. An attacker who knows the publication, the equations,
//!    non-negativity and rule 2 then cannot pin down any hidden value; in particular no linear
//!    combination of the equations recovers one. [`recoverable`] is that linear attacker,
//!    working from the publication alone; [`publish`] runs it as a final audit.
//!
//! # How rule 4 is met
//!
//! Another table that agrees with the publication differs from the true one by a *move*: a
//! change of hidden values that leaves every line's parts summing to its total. The moves are
//! cycles. Moving one person from cell (i,j) to (i,j') and another from (i',j') to (i',j)
//! changes four cells by −1, +1, −1, +1 and no total; one more person in (i,j) is the cycle
//! cell (i,j) → column total (r,j) → grand total (r,c) → row total (i,c), each one up. In
//! general, take a graph with one node per line and one edge per grid entry (entry (i,j) joins
//! grid row i and grid column j). Raising an entry by one is a step across its edge in one
//! direction, lowering it a step in the other, and a closed walk of such steps keeps every
//! equation. A hidden value can always go up, and can go down only from 2 or more (rule 2), so
//! a hidden entry is free iff a closed walk through it uses only hidden entries' allowed steps.
//!
//! For a hidden entry that is not free, [`publish`] finds the cheapest closed walk through it
//! (Dijkstra; a hidden entry costs 0, a shown entry its value, so small counts go first) and
//! hides the shown entries on it. Such a walk always exists: the true table itself is a closed
//! walk of "up" steps over every non-zero entry (doubling the whole table keeps every equation).
//! So each repair hides at least one more non-zero entry, hiding more never takes a step away,
//! and the process ends: at worst every non-zero entry is hidden, which is always safe (only
//! zeros are shown then, and the doubled table agrees with them while changing every hidden
//! value). Rules 3 and 4 are applied in turn until neither hides anything.
//!
//! The result is deterministic: entries are visited row by row, margins last, and ties between
//! equally cheap choices go to the earlier position.
//!
//! # Limits
//!
//! Hidden values are protected against exact recovery, not against bounds: the attacker still
//! learns that a hidden value is at least 1 and at most what the shown totals leave for it
//! (at most 11 when it and one other hidden cell share the 12 a row's shown total leaves). No
//! minimum width of that interval is enforced. Rule 3 holds derived sums to the threshold line
//! by line; a sum of hidden values derived from several lines at once is not checked. Shown
//! zeros also tell where non-zero counts are: when the district total is below the threshold,
//! every non-zero value is hidden, but the zeros still show which communities and categories
//! the few records are in.

use std::cmp::Ordering;
use std::iter;

/// The threshold the open dataset uses: counts from 1 to 4 are hidden.
pub const DEFAULT_THRESHOLD: u64 = 5;

/// Counts of active records in one district: `counts()[row][column]`, one row per community,
/// one column per category. Built through [`Table::new`], which checks the shape, so
/// [`publish`] cannot fail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    rows: Vec<String>,
    columns: Vec<String>,
    counts: Vec<Vec<u64>>,
}

/// Why counts do not make a [`Table`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TableError {
    #[error("{labels} community labels but {rows} rows of counts")]
    RowCount { labels: usize, rows: usize },
    #[error("row {row} has {found} counts for {expected} categories")]
    RowLength {
        row: usize,
        expected: usize,
        found: usize,
    },
    #[error("the district total does not fit in 64 bits")]
    Overflow,
}

impl Table {
    /// A table of `counts[row][column]`, labelled by community (`rows`) and category
    /// (`columns`). Refused unless there is one row of counts per community and one count per
    /// category in each, and the district total fits in a `u64` (every other total is at most
    /// that).
    pub fn new(
        rows: Vec<String>,
        columns: Vec<String>,
        counts: Vec<Vec<u64>>,
    ) -> Result<Self, TableError> {
        if counts.len() != rows.len() {
            return Err(TableError::RowCount {
                labels: rows.len(),
                rows: counts.len(),
            });
        }
        if let Some((row, line)) = counts
            .iter()
            .enumerate()
            .find(|(_, line)| line.len() != columns.len())
        {
            return Err(TableError::RowLength {
                row,
                expected: columns.len(),
                found: line.len(),
            });
        }
        counts
            .iter()
            .flatten()
            .try_fold(0u64, |sum, &n| sum.checked_add(n))
            .ok_or(TableError::Overflow)?;
        Ok(Self {
            rows,
            columns,
            counts,
        })
    }

    /// The community labels, one per row.
    pub fn rows(&self) -> &[String] {
        &self.rows
    }

    /// The category labels, one per column.
    pub fn columns(&self) -> &[String] {
        &self.columns
    }

    /// `counts()[row][column]`.
    pub fn counts(&self) -> &[Vec<u64>] {
        &self.counts
    }
}

/// One published value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cell {
    /// The true count.
    Shown(u64),
    /// Hidden: a count from 1 to threshold − 1, or a complement hidden to protect one. Never 0.
    Suppressed,
}

impl Cell {
    /// The count, if shown.
    pub fn shown(self) -> Option<u64> {
        match self {
            Cell::Shown(n) => Some(n),
            Cell::Suppressed => None,
        }
    }
}

/// A table as the public sees it, in the shape of the [`Table`] it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    /// `cells[row][column]`: the community's count in the category.
    pub cells: Vec<Vec<Cell>>,
    /// Per community, its total over the categories.
    pub row_totals: Vec<Cell>,
    /// Per category, the district's total over the communities.
    pub column_totals: Vec<Cell>,
    /// The district's total.
    pub total: Cell,
}

impl Published {
    /// The number of communities.
    pub fn rows(&self) -> usize {
        self.row_totals.len()
    }

    /// The number of categories.
    pub fn columns(&self) -> usize {
        self.column_totals.len()
    }

    /// The entry at `(row, col)` of the grid with its margins (see the module doc):
    /// `row == self.rows()` is the category totals, `col == self.columns()` the community
    /// totals, both together the district total. `None` outside the grid.
    pub fn entry(&self, row: usize, col: usize) -> Option<Cell> {
        match (row.cmp(&self.rows()), col.cmp(&self.columns())) {
            (Ordering::Less, Ordering::Less) => self.cells.get(row)?.get(col).copied(),
            (Ordering::Less, Ordering::Equal) => self.row_totals.get(row).copied(),
            (Ordering::Equal, Ordering::Less) => self.column_totals.get(col).copied(),
            (Ordering::Equal, Ordering::Equal) => Some(self.total),
            _ => None,
        }
    }
}

/// A hidden entry the linear attacker pins down, and the value it finds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recovered {
    /// Grid row: a community, or [`Published::rows`] for the category totals.
    pub row: usize,
    /// Grid column: a category, or [`Published::columns`] for the community totals.
    pub col: usize,
    /// The value the published numbers force. The equations' matrix is totally unimodular (a
    /// network matrix), so this is always a whole number; for a publication of a real table it
    /// is the true count.
    pub value: i128,
}

/// Publishes `table` with every count below `threshold` hidden, and enough others that no
/// hidden value can be worked out (the rules are in the module doc). Deterministic.
pub fn publish(table: &Table, threshold: u64) -> Published {
    let mut grid = Grid::new(table, threshold);
    grid.protect(threshold);
    let published = grid.published();
    if recoverable(&published).is_empty() {
        return published;
    }
    // Unreachable by the argument in the module doc; should a bug ever break it, hiding every
    // non-zero value is always safe.
    grid.hide_all_nonzero();
    grid.published()
}

/// The linear attacker: every hidden entry of `published` whose value follows from the shown
/// values and the line equations by any linear combination, with that value.
///
/// The unknowns are the hidden entries; each line gives one equation, its shown entries moved
/// to the right-hand side. A hidden entry is recovered iff its unit vector lies in the row space
/// of that system, which Gaussian elimination over exact integers (rows kept small by dividing
/// out their gcd) decides: after full reduction, iff its pivot row has no other unknown in it.
/// Only the publication is used. A ragged hand-built `Published` has its missing entries
/// treated as hidden.
pub fn recoverable(published: &Published) -> Vec<Recovered> {
    let (r, c) = (published.rows(), published.columns());
    let at = |i: usize, j: usize| published.entry(i, j).unwrap_or(Cell::Suppressed);
    // Row-major, hence sorted, so an unknown's column is found by binary search.
    let unknowns: Vec<(usize, usize)> = entries(r, c)
        .filter(|&(i, j)| at(i, j) == Cell::Suppressed)
        .collect();
    let n = unknowns.len();

    // One equation per line: sum(parts) - total = 0, as [coefficients of the unknowns.., rhs].
    let mut equations: Vec<Vec<i128>> = Line::all(r, c)
        .map(|line| {
            let mut equation = vec![0i128; n + 1];
            let terms = line
                .parts(r, c)
                .map(|entry| (entry, 1))
                .chain(iter::once((line.total(r, c), -1)));
            for ((i, j), coefficient) in terms {
                match at(i, j) {
                    Cell::Shown(value) => equation[n] -= coefficient * i128::from(value),
                    Cell::Suppressed => {
                        if let Ok(x) = unknowns.binary_search(&(i, j)) {
                            equation[x] += coefficient;
                        }
                    }
                }
            }
            equation
        })
        .collect();

    // Reduced row echelon form: each pivot column is zero in every other row.
    let mut pivots: Vec<(usize, usize)> = Vec::new();
    for col in 0..n {
        let top = pivots.len();
        let Some(found) = (top..equations.len()).find(|&p| equations[p][col] != 0) else {
            continue;
        };
        equations.swap(top, found);
        let pivot = equations[top].clone();
        for (q, equation) in equations.iter_mut().enumerate() {
            let factor = equation[col];
            if q == top || factor == 0 {
                continue;
            }
            for (x, p) in equation.iter_mut().zip(&pivot) {
                *x = *x * pivot[col] - p * factor;
            }
            divide_out_gcd(equation);
        }
        pivots.push((top, col));
    }

    pivots
        .into_iter()
        .filter_map(|(row, col)| {
            let equation = &equations[row];
            let alone = equation[..n]
                .iter()
                .enumerate()
                .all(|(x, &a)| x == col || a == 0);
            alone.then(|| {
                let (i, j) = unknowns[col];
                // Total unimodularity makes the division exact.
                Recovered {
                    row: i,
                    col: j,
                    value: equation[n] / equation[col],
                }
            })
        })
        .collect()
}

/// Divides an equation by the gcd of its coefficients and right-hand side.
fn divide_out_gcd(equation: &mut [i128]) {
    let g = equation
        .iter()
        .fold(0u128, |g, &a| gcd(g, a.unsigned_abs()));
    match i128::try_from(g) {
        Ok(g) if g > 1 => equation.iter_mut().for_each(|a| *a /= g),
        _ => {}
    }
}

fn gcd(mut a: u128, mut b: u128) -> u128 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// Every grid entry, row by row, margins last.
fn entries(r: usize, c: usize) -> impl Iterator<Item = (usize, usize)> {
    (0..=r).flat_map(move |i| (0..=c).map(move |j| (i, j)))
}

/// A line of the grid: a grid row (a community, or the category totals at `r`) or a grid column
/// (a category, or the community totals at `c`). Its parts sum to its total.
#[derive(Debug, Clone, Copy)]
enum Line {
    Row(usize),
    Column(usize),
}

impl Line {
    /// Every line: the grid rows, then the grid columns.
    fn all(r: usize, c: usize) -> impl Iterator<Item = Line> {
        (0..=r).map(Line::Row).chain((0..=c).map(Line::Column))
    }

    /// The line's parts, in order; its total is not one of them.
    fn parts(self, r: usize, c: usize) -> impl Iterator<Item = (usize, usize)> {
        let (row, col, len) = match self {
            Line::Row(i) => (Some(i), None, c),
            Line::Column(j) => (None, Some(j), r),
        };
        (0..len).map(move |k| (row.unwrap_or(k), col.unwrap_or(k)))
    }

    /// The line's total, on the margin.
    fn total(self, r: usize, c: usize) -> (usize, usize) {
        match self {
            Line::Row(i) => (i, c),
            Line::Column(j) => (r, j),
        }
    }
}

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
struct Grid {
    r: usize,
    c: usize,
    value: Vec<Vec<u64>>,
    hidden: Vec<Vec<bool>>,
}

impl Grid {
    /// The table with its margins, with the counts below `threshold` hidden (rule 1).
    fn new(table: &Table, threshold: u64) -> Self {
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

    fn published(&self) -> Published {
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

    fn hide_all_nonzero(&mut self) {
        for (values, hidden) in self.value.iter().zip(&mut self.hidden) {
            for (&n, hidden) in values.iter().zip(hidden) {
                *hidden = n > 0;
            }
        }
    }

    /// Applies rules 3 and 4 until neither hides anything more. Each pass that changes anything
    /// hides at least one more non-zero entry, so this ends.
    fn protect(&mut self, threshold: u64) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn table(counts: &[&[u64]]) -> Table {
        let columns = counts.first().map_or(0, |row| row.len());
        Table::new(
            (0..counts.len())
                .map(|i| format!("community-{i}"))
                .collect(),
            (0..columns).map(|j| format!("category-{j}")).collect(),
            counts.iter().map(|row| row.to_vec()).collect(),
        )
        .expect("a rectangular table")
    }

    /// The table with its margins, computed here independently of the module.
    fn truth(table: &Table) -> Vec<Vec<u64>> {
        margins(table.counts(), table.columns().len())
    }

    /// `counts` (c columns) with its margins.
    fn margins(counts: &[Vec<u64>], c: usize) -> Vec<Vec<u64>> {
        let mut grid: Vec<Vec<u64>> = counts
            .iter()
            .map(|row| row.iter().copied().chain([row.iter().sum()]).collect())
            .collect();
        let totals = (0..=c)
            .map(|j| grid.iter().map(|row| row[j]).sum())
            .collect();
        grid.push(totals);
        grid
    }

    /// A publication of `table` hiding exactly the entries `hide` picks by position and value.
    fn publication(table: &Table, hide: impl Fn((usize, usize), u64) -> bool) -> Published {
        let t = truth(table);
        let (r, c) = (table.rows().len(), table.columns().len());
        let cell = |i: usize, j: usize| {
            if hide((i, j), t[i][j]) {
                Cell::Suppressed
            } else {
                Cell::Shown(t[i][j])
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

    /// What primary suppression alone publishes.
    fn primary_only(table: &Table, threshold: u64) -> Published {
        publication(table, |_, n| 0 < n && n < threshold)
    }

    /// A grid position: (row, column), margins included.
    type At = (usize, usize);

    /// Per grid entry, the (min, max) it takes over the tables an attacker cannot rule out.
    type Ranges = Vec<Vec<Option<(u64, u64)>>>;

    /// The lines of an r×c table with margins, as (parts, total), written out independently.
    fn lines(r: usize, c: usize) -> Vec<(Vec<At>, At)> {
        let rows = (0..=r).map(|i| ((0..c).map(|j| (i, j)).collect(), (i, c)));
        let columns = (0..=c).map(|j| ((0..r).map(|i| (i, j)).collect(), (r, j)));
        rows.chain(columns).collect()
    }

    /// Everything `publish` promises about `published`, a publication of `table`.
    fn check(table: &Table, threshold: u64, published: &Published) {
        let t = truth(table);
        let (r, c) = (table.rows().len(), table.columns().len());
        assert_eq!((published.rows(), published.columns()), (r, c));
        assert_eq!(published.cells.len(), r);
        assert!(published.cells.iter().all(|row| row.len() == c));
        for (i, j) in entries(r, c) {
            let n = t[i][j];
            match published.entry(i, j) {
                Some(Cell::Shown(shown)) => {
                    assert_eq!(shown, n, "({i},{j}) is shown wrong");
                    assert!(
                        n == 0 || n >= threshold,
                        "({i},{j}) = {n} is below the threshold and shown"
                    );
                }
                Some(Cell::Suppressed) => assert!(n > 0, "the zero at ({i},{j}) is hidden"),
                None => panic!("({i},{j}) is missing"),
            }
        }
        for (parts, (ti, tj)) in lines(r, c) {
            if published.entry(ti, tj) == Some(Cell::Suppressed) {
                continue;
            }
            let hidden: u64 = parts
                .iter()
                .filter(|&&(i, j)| published.entry(i, j) == Some(Cell::Suppressed))
                .map(|&(i, j)| t[i][j])
                .sum();
            assert!(
                hidden == 0 || hidden >= threshold,
                "the hidden parts of the line with total ({ti},{tj}) add up to {hidden}"
            );
        }
        assert_eq!(recoverable(published), vec![]);
    }

    /// The bounded attacker, by exhaustion, for small tables: every table that agrees with
    /// `published` (shown values exact, every line equation, hidden values whole numbers of at
    /// least 1, as rule 2 tells) with each hidden cell at most `bound`. Returns each hidden
    /// entry's (min, max) over those tables; an entry with min == max is pinned down if the
    /// bound covers every such table (it does when the grand total is shown and is the bound).
    /// `None` if the search would visit more than a few million partial tables.
    fn exhaust(published: &Published, bound: u64) -> Option<Ranges> {
        struct Search<'a> {
            published: &'a Published,
            bound: u64,
            budget: u64,
            counts: Vec<Vec<u64>>,
            range: Ranges,
        }
        fn fits(cell: Option<Cell>, n: u64, complete: bool) -> bool {
            match cell {
                Some(Cell::Shown(shown)) => n <= shown && (!complete || n == shown),
                _ => !complete || n >= 1,
            }
        }
        fn search(s: &mut Search<'_>, cell: usize) {
            if s.budget == 0 {
                return;
            }
            s.budget -= 1;
            let (r, c) = (s.published.rows(), s.published.columns());
            if cell == r * c {
                let t = margins(&s.counts, c);
                let agrees =
                    entries(r, c).all(|(i, j)| fits(s.published.entry(i, j), t[i][j], true));
                if agrees {
                    for (i, j) in entries(r, c) {
                        if s.published.entry(i, j) == Some(Cell::Suppressed) {
                            let n = t[i][j];
                            let range = s.range[i][j].get_or_insert((n, n));
                            *range = (range.0.min(n), range.1.max(n));
                        }
                    }
                }
                return;
            }
            let (i, j) = (cell / c, cell % c);
            let values = match s.published.entry(i, j) {
                Some(Cell::Shown(n)) => n..=n,
                _ => 1..=s.bound,
            };
            for n in values {
                s.counts[i][j] = n;
                let row: u64 = s.counts[i][..=j].iter().sum();
                let col: u64 = s.counts[..=i].iter().map(|line| line[j]).sum();
                let all: u64 = s.counts.iter().flatten().sum();
                // Raising n only raises the partial sums: once one is too big, stop.
                if !fits(s.published.entry(i, c), row, false)
                    || !fits(s.published.entry(r, j), col, false)
                    || !fits(s.published.entry(r, c), all, false)
                {
                    break;
                }
                if fits(s.published.entry(i, c), row, j + 1 == c)
                    && fits(s.published.entry(r, j), col, i + 1 == r)
                {
                    search(s, cell + 1);
                }
            }
            s.counts[i][j] = 0;
        }
        let (r, c) = (published.rows(), published.columns());
        let mut s = Search {
            published,
            bound,
            budget: 5_000_000,
            counts: vec![vec![0; c]; r],
            range: vec![vec![None; c + 1]; r + 1],
        };
        search(&mut s, 0);
        (s.budget > 0).then_some(s.range)
    }

    /// Hidden entries whose value every agreeing table shares, per [`exhaust`] with a bound
    /// that covers the truth and one step either way from it. `None` if the search is too big.
    fn pinned(table: &Table, published: &Published) -> Option<Vec<At>> {
        let t = truth(table);
        let (r, c) = (table.rows().len(), table.columns().len());
        let bound = match published.total {
            Cell::Shown(total) => total,
            Cell::Suppressed => t[r][c] + 1,
        };
        let range = exhaust(published, bound)?;
        let pinned = entries(r, c)
            .filter(|&(i, j)| published.entry(i, j) == Some(Cell::Suppressed))
            .filter(|&(i, j)| {
                let found = range[i][j].expect("the true table agrees with its publication");
                found.0 == found.1
            })
            .collect();
        Some(pinned)
    }

    #[test]
    fn the_attacker_finds_a_lone_hidden_cell_in_a_row() {
        let t = table(&[&[2, 9, 7], &[6, 8, 12]]);
        assert_eq!(
            recoverable(&primary_only(&t, 5)),
            vec![Recovered {
                row: 0,
                col: 0,
                value: 2
            }]
        );
        check(&t, 5, &publish(&t, 5));
    }

    /// Two hidden rectangles joined by one more hidden cell: every line has 0 or at least 2
    /// hidden entries, yet rows 0 and 1 minus columns 0 and 1 leave cell (1,2) alone.
    #[test]
    fn the_attacker_combines_lines_where_no_line_has_a_lone_hidden_cell() {
        let t = table(&[&[1, 2, 9, 8], &[3, 1, 2, 7], &[6, 9, 1, 3], &[8, 7, 2, 4]]);
        let naive = primary_only(&t, 5);
        for (parts, total) in lines(4, 4) {
            let hidden = parts
                .iter()
                .chain([&total])
                .filter(|&&(i, j)| naive.entry(i, j) == Some(Cell::Suppressed))
                .count();
            assert_ne!(hidden, 1);
        }
        assert_eq!(
            recoverable(&naive),
            vec![Recovered {
                row: 1,
                col: 2,
                value: 2
            }]
        );
        let published = publish(&t, 5);
        check(&t, 5, &published);
        assert_eq!(pinned(&t, &published), Some(vec![]));
    }

    /// Two 1s in a row, hidden with a rectangle: the linear attacker is beaten, but the row's
    /// shown total leaves 2 for them and each is at least 1 (zeros would have been shown), so
    /// the bounded attacker pins all four. `publish` hides more.
    #[test]
    fn two_ones_in_a_row_are_not_pinned_by_the_zero_policy() {
        let t = table(&[&[1, 1, 8], &[6, 7, 9]]);
        let rectangle = publication(&t, |(i, j), _| i < 2 && j < 2);
        assert_eq!(recoverable(&rectangle), vec![]);
        assert_eq!(
            pinned(&t, &rectangle),
            Some(vec![(0, 0), (0, 1), (1, 0), (1, 1)])
        );
        let published = publish(&t, 5);
        check(&t, 5, &published);
        assert_eq!(pinned(&t, &published), Some(vec![]));
    }

    #[test]
    fn a_district_is_published_consistently_and_deterministically() {
        let t = table(&[
            &[12, 3, 25, 7],
            &[0, 0, 14, 9],
            &[8, 1, 30, 0],
            &[15, 6, 22, 11],
            &[2, 0, 0, 1],
            &[9, 7, 18, 6],
        ]);
        let published = publish(&t, DEFAULT_THRESHOLD);
        check(&t, DEFAULT_THRESHOLD, &published);
        assert_eq!(publish(&t, DEFAULT_THRESHOLD), published);
        // Community 4 has 3 records: its total is hidden as well as its cells.
        assert_eq!(published.row_totals[4], Cell::Suppressed);
        assert_eq!(published.cells[1][0], Cell::Shown(0));
    }

    /// The largest districts: 50 communities, 8 categories, about a third of the counts small.
    #[test]
    fn a_large_district_is_protected() {
        let mut seed: u64 = 7;
        let counts: Vec<Vec<u64>> = (0..50)
            .map(|_| {
                (0..8)
                    .map(|_| {
                        seed = seed
                            .wrapping_mul(6364136223846793005)
                            .wrapping_add(1442695040888963407);
                        let n = seed >> 59;
                        if n < 12 { n / 2 } else { n * 3 }
                    })
                    .collect()
            })
            .collect();
        let rows: Vec<&[u64]> = counts.iter().map(Vec::as_slice).collect();
        let t = table(&rows);
        let published = publish(&t, DEFAULT_THRESHOLD);
        check(&t, DEFAULT_THRESHOLD, &published);
        let mut grid = Grid::new(&t, DEFAULT_THRESHOLD);
        grid.protect(DEFAULT_THRESHOLD);
        assert_eq!(grid.published(), published);
    }

    #[test]
    fn nothing_is_hidden_when_every_count_reaches_the_threshold() {
        let t = table(&[&[5, 6, 70], &[7, 8, 5]]);
        assert_eq!(publish(&t, 5), publication(&t, |_, _| false));
        let zeros_too = table(&[&[0, 6], &[7, 0]]);
        assert_eq!(
            publish(&zeros_too, 5),
            publication(&zeros_too, |_, _| false)
        );
        assert_eq!(publish(&t, 0), publication(&t, |_, _| false));
        assert_eq!(publish(&t, 1), publication(&t, |_, _| false));
    }

    #[test]
    fn empty_tables_publish_zero_totals() {
        let t = table(&[]);
        let published = publish(&t, 5);
        assert_eq!(published.total, Cell::Shown(0));
        check(&t, 5, &published);
        let no_rows = Table::new(vec![], vec!["a".into(), "b".into()], vec![]).expect("table");
        let published = publish(&no_rows, 5);
        assert_eq!(published.column_totals, vec![Cell::Shown(0); 2]);
        check(&no_rows, 5, &published);
        let no_columns = table(&[&[], &[]]);
        let published = publish(&no_columns, 5);
        assert_eq!(published.row_totals, vec![Cell::Shown(0); 2]);
        check(&no_columns, 5, &published);
    }

    #[test]
    fn one_row_and_one_column() {
        for t in [
            table(&[&[3, 9, 12]]),
            table(&[&[3], &[9], &[12]]),
            table(&[&[3, 0, 12]]),
            table(&[&[7]]),
            table(&[&[3]]),
        ] {
            let published = publish(&t, 5);
            check(&t, 5, &published);
            assert_eq!(pinned(&t, &published), Some(vec![]));
        }
        // The 3 can only hide behind the 9: with the 12 it would leave 15 - 12.
        let published = publish(&table(&[&[3, 9, 12]]), 5);
        assert_eq!(
            published.cells[0],
            vec![Cell::Suppressed, Cell::Suppressed, Cell::Shown(12)]
        );
    }

    #[test]
    fn all_zeros_are_shown() {
        let t = table(&[&[0, 0], &[0, 0], &[0, 0]]);
        assert_eq!(publish(&t, 5), publication(&t, |_, _| false));
    }

    #[test]
    fn a_district_below_the_threshold_hides_every_non_zero_value() {
        let t = table(&[&[1, 0], &[0, 2], &[0, 0]]);
        let published = publish(&t, 5);
        assert_eq!(published, publication(&t, |_, n| n > 0));
        check(&t, 5, &published);
        assert_eq!(pinned(&t, &published), Some(vec![]));
    }

    #[test]
    fn tables_of_the_wrong_shape_are_refused() {
        let labels = |n: usize| (0..n).map(|k| k.to_string()).collect::<Vec<_>>();
        assert_eq!(
            Table::new(labels(2), labels(1), vec![vec![1]]),
            Err(TableError::RowCount { labels: 2, rows: 1 })
        );
        assert_eq!(
            Table::new(labels(2), labels(2), vec![vec![1, 2], vec![3]]),
            Err(TableError::RowLength {
                row: 1,
                expected: 2,
                found: 1
            })
        );
        assert_eq!(
            Table::new(labels(2), labels(1), vec![vec![u64::MAX], vec![1]]),
            Err(TableError::Overflow)
        );
    }

    /// Counts below `max`, many below a typical threshold, some zeros.
    fn count(max: u64) -> impl Strategy<Value = u64> {
        prop_oneof![3 => 0u64..5, 2 => 0u64..max]
    }

    fn tables(
        rows: std::ops::Range<usize>,
        columns: std::ops::Range<usize>,
        max: u64,
    ) -> impl Strategy<Value = Table> {
        (rows, columns)
            .prop_flat_map(move |(r, c)| {
                prop::collection::vec(prop::collection::vec(count(max), c), r)
            })
            .prop_map(|counts| {
                let rows: Vec<&[u64]> = counts.iter().map(Vec::as_slice).collect();
                table(&rows)
            })
    }

    proptest! {
        #[test]
        fn publish_holds_its_rules(t in tables(1..8, 1..5, 20), threshold in 1u64..=6) {
            let published = publish(&t, threshold);
            check(&t, threshold, &published);
            // Rules 3 and 4 alone pass the audit: its fallback never fires.
            let mut grid = Grid::new(&t, threshold);
            grid.protect(threshold);
            prop_assert_eq!(grid.published(), published);
        }

        /// Whatever the linear attacker claims about a primary-only publication is the truth.
        #[test]
        fn the_attacker_is_right_when_it_claims(t in tables(1..8, 1..5, 20), threshold in 1u64..=6) {
            let grid = truth(&t);
            for found in recoverable(&primary_only(&t, threshold)) {
                prop_assert_eq!(found.value, i128::from(grid[found.row][found.col]));
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(96))]

        /// The bounded attacker, by exhaustion on small tables: no hidden value of `publish`'s
        /// output is pinned, and everything the linear attacker recovers from a primary-only
        /// publication is pinned too.
        #[test]
        fn no_value_is_pinned_even_knowing_hidden_values_are_non_zero(
            t in tables(1..4, 1..4, 10),
            threshold in 2u64..=5,
        ) {
            let published = publish(&t, threshold);
            let pins = pinned(&t, &published);
            prop_assume!(pins.is_some());
            prop_assert_eq!(pins, Some(vec![]));
            let naive = primary_only(&t, threshold);
            let pins = pinned(&t, &naive);
            prop_assume!(pins.is_some());
            let pins = pins.unwrap_or_default();
            for found in recoverable(&naive) {
                prop_assert!(pins.contains(&(found.row, found.col)));
            }
        }
    }
}
