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
            let agrees = entries(r, c).all(|(i, j)| fits(s.published.entry(i, j), t[i][j], true));
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
        .prop_flat_map(move |(r, c)| prop::collection::vec(prop::collection::vec(count(max), c), r))
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
