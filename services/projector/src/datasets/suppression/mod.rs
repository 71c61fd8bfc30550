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

/// The threshold the open dataset uses: counts from 1 to 4 are hidden.
use std::cmp::Ordering;

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

mod attack;
mod grid;
#[cfg(test)]
mod tests;

pub use attack::recoverable;
use grid::Grid;
