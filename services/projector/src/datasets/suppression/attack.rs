//! The linear attacker: what the published numbers give away by any sum or difference.

use std::iter;

use super::{Cell, Line, Published, Recovered, entries};

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
