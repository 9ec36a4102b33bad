//! Matrix Market input: `%%MatrixMarket matrix coordinate real|integer general|symmetric` files
//! (1-based entries; a symmetric file lists one triangle), and right-hand sides as plain text (one
//! number per line, `%`/`#` comments) or a Matrix Market `array` of one column. Every error names
//! the file and the line.
//!
//! ```
//! let text = "%%MatrixMarket matrix coordinate real symmetric\n% a comment\n2 2 3\n1 1 4\n2 1 -1\n2 2 4\n";
//! let a = gradlab_solvers::mtx::parse_matrix(text, "A.mtx").unwrap();
//! assert_eq!(a.get(0, 1), -1.0); // the other triangle is filled in
//! assert!(gradlab_solvers::mtx::parse_matrix("%%MatrixMarket matrix coordinate real general\n2 2 1\n3 1 1.0\n", "A.mtx").is_err());
//! ```

use crate::{Csr, Result, SolverError};
use std::path::Path;

fn perr(path: &str, line: usize, why: impl Into<String>) -> SolverError {
    SolverError::Parse {
        path: path.into(),
        line,
        why: why.into(),
    }
}

/// Read a Matrix Market matrix file.
pub fn read_matrix(path: &Path) -> Result<Csr> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| SolverError::Io(format!("{}: {e}", path.display())))?;
    parse_matrix(&text, &path.display().to_string())
}

/// Parse Matrix Market text (`path` only names it in errors).
pub fn parse_matrix(text: &str, path: &str) -> Result<Csr> {
    let mut lines = text.lines().enumerate().map(|(i, l)| (i + 1, l));
    let (_, header) = lines
        .next()
        .ok_or_else(|| perr(path, 0, "the file is empty"))?;
    let h: Vec<String> = header.split_whitespace().map(str::to_lowercase).collect();
    if h.len() != 5 || h[0] != "%%matrixmarket" || h[1] != "matrix" {
        return Err(perr(
            path,
            1,
            format!("not a Matrix Market header: {header:?}"),
        ));
    }
    if h[2] != "coordinate" {
        return Err(perr(
            path,
            1,
            format!("format {:?}: only `coordinate` matrices are read", h[2]),
        ));
    }
    if h[3] != "real" && h[3] != "integer" {
        return Err(perr(
            path,
            1,
            format!("field {:?}: only `real` and `integer` are read", h[3]),
        ));
    }
    let symmetric = match h[4].as_str() {
        "general" => false,
        "symmetric" => true,
        other => {
            return Err(perr(
                path,
                1,
                format!("symmetry {other:?}: only `general` and `symmetric` are read"),
            ));
        }
    };
    let mut body = lines.filter(|(_, l)| !l.trim().is_empty() && !l.trim_start().starts_with('%'));
    let (sl, size) = body.next().ok_or_else(|| perr(path, 0, "no size line"))?;
    let dims: Vec<usize> = size
        .split_whitespace()
        .map(|t| {
            t.parse::<usize>().map_err(|_| {
                perr(
                    path,
                    sl,
                    format!("size line {size:?}: expected `rows columns entries`"),
                )
            })
        })
        .collect::<Result<_>>()?;
    if dims.len() != 3 {
        return Err(perr(
            path,
            sl,
            format!("size line {size:?}: expected three integers"),
        ));
    }
    let (m, n, nnz) = (dims[0], dims[1], dims[2]);
    if m != n || n == 0 {
        return Err(perr(
            path,
            sl,
            format!("the matrix is {m} × {n}: a square, non-empty system is needed"),
        ));
    }
    let mut t = Vec::with_capacity(if symmetric { 2 * nnz } else { nnz });
    let mut count = 0;
    for (ln, line) in body {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() != 3 {
            return Err(perr(
                path,
                ln,
                format!("expected `row column value`, found {line:?}"),
            ));
        }
        let i: usize = f[0].parse().map_err(|_| {
            perr(
                path,
                ln,
                format!("row {:?} is not a positive integer", f[0]),
            )
        })?;
        let j: usize = f[1].parse().map_err(|_| {
            perr(
                path,
                ln,
                format!("column {:?} is not a positive integer", f[1]),
            )
        })?;
        let v: f64 = f[2]
            .parse()
            .map_err(|_| perr(path, ln, format!("value {:?} is not a number", f[2])))?;
        if i == 0 || j == 0 || i > n || j > n {
            return Err(perr(
                path,
                ln,
                format!("entry ({i}, {j}) is outside the {n} × {n} matrix (indices are 1-based)"),
            ));
        }
        if !v.is_finite() {
            return Err(perr(path, ln, format!("value {v} is not finite")));
        }
        if symmetric && j > i {
            return Err(perr(
                path,
                ln,
                format!(
                    "entry ({i}, {j}) is above the diagonal in a symmetric file (only the lower triangle is stored)"
                ),
            ));
        }
        t.push((i - 1, j - 1, v));
        if symmetric && i != j {
            t.push((j - 1, i - 1, v));
        }
        count += 1;
    }
    if count != nnz {
        return Err(perr(
            path,
            0,
            format!("the size line promises {nnz} entries, the file has {count}"),
        ));
    }
    Csr::from_triplets(n, &t)
}

/// Read a right-hand side: plain numbers or a one-column Matrix Market array.
pub fn read_vector(path: &Path) -> Result<Vec<f64>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| SolverError::Io(format!("{}: {e}", path.display())))?;
    parse_vector(&text, &path.display().to_string())
}

/// Parse a right-hand side (`path` only names it in errors).
pub fn parse_vector(text: &str, path: &str) -> Result<Vec<f64>> {
    let mut out = vec![];
    let mut array_size: Option<usize> = None;
    let is_mm = text
        .trim_start()
        .to_lowercase()
        .starts_with("%%matrixmarket");
    if is_mm {
        let header = text.lines().next().unwrap_or("").to_lowercase();
        if !header.contains("array") {
            return Err(perr(
                path,
                1,
                "a right-hand side in Matrix Market form must be an `array`",
            ));
        }
    }
    for (ln, line) in text.lines().enumerate().map(|(i, l)| (i + 1, l.trim())) {
        if line.is_empty() || line.starts_with('%') || line.starts_with('#') {
            continue;
        }
        if is_mm && array_size.is_none() {
            let d: Vec<usize> = line
                .split_whitespace()
                .map(|t| {
                    t.parse::<usize>()
                        .map_err(|_| perr(path, ln, format!("size line {line:?}")))
                })
                .collect::<Result<_>>()?;
            if d.len() != 2 || d[1] != 1 {
                return Err(perr(
                    path,
                    ln,
                    format!("size line {line:?}: a right-hand side is `n 1`"),
                ));
            }
            array_size = Some(d[0]);
            continue;
        }
        for tok in line.split_whitespace() {
            let v: f64 = tok
                .parse()
                .map_err(|_| perr(path, ln, format!("{tok:?} is not a number")))?;
            if !v.is_finite() {
                return Err(perr(path, ln, format!("{v} is not finite")));
            }
            out.push(v);
        }
    }
    if let Some(n) = array_size
        && n != out.len()
    {
        return Err(perr(
            path,
            0,
            format!(
                "the size line promises {n} values, the file has {}",
                out.len()
            ),
        ));
    }
    if out.is_empty() {
        return Err(perr(path, 0, "no values"));
    }
    Ok(out)
}

/// Write a matrix as a general coordinate Matrix Market file (through a temporary file beside it,
/// renamed into place).
pub fn write_matrix(path: &Path, a: &Csr) -> Result<()> {
    let mut s = format!(
        "%%MatrixMarket matrix coordinate real general\n{} {} {}\n",
        a.n(),
        a.n(),
        a.nnz()
    );
    for (i, j, v) in a.triplets() {
        s.push_str(&format!("{} {} {v:e}\n", i + 1, j + 1));
    }
    write_atomic(path, &s)
}

/// Write a vector, one value per line, atomically.
pub fn write_vector(path: &Path, v: &[f64]) -> Result<()> {
    let s: String = v.iter().map(|x| format!("{x:e}\n")).collect();
    write_atomic(path, &s)
}

fn write_atomic(path: &Path, text: &str) -> Result<()> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "out".into());
    let tmp = path.with_file_name(format!(".{name}.tmp-{}", std::process::id()));
    std::fs::write(&tmp, text)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            SolverError::Io(format!("{}: {e}", path.display()))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_files_name_the_line() {
        let hdr = "%%MatrixMarket matrix coordinate real general\n";
        let cases = [
            ("", 0),
            (
                "%%MatrixMarket vector coordinate real general\n1 1 1\n1 1 1\n",
                1,
            ),
            ("%%MatrixMarket matrix array real general\n1 1\n1\n", 1),
            ("%%MatrixMarket matrix coordinate complex general\n", 1),
            (&*format!("{hdr}2 3 1\n1 1 1\n"), 2),
            (&*format!("{hdr}% c\n2 2 2\n1 1 1\n1 x 2\n"), 5),
            (&*format!("{hdr}2 2 1\n0 1 1\n"), 3),
            (&*format!("{hdr}2 2 2\n1 1 1\n"), 0),
            (&*format!("{hdr}2 2 1\n1 1 nan\n"), 3),
            (
                "%%MatrixMarket matrix coordinate real symmetric\n2 2 1\n1 2 1\n",
                3,
            ),
        ];
        for (text, line) in cases {
            match parse_matrix(text, "A.mtx") {
                Err(SolverError::Parse { line: l, .. }) => assert_eq!(l, line, "{text:?}"),
                other => panic!("{text:?}: {other:?}"),
            }
        }
        assert_eq!(
            parse_vector("# b\n1\n2.5 3\n", "b.txt").unwrap(),
            vec![1.0, 2.5, 3.0]
        );
        assert!(matches!(
            parse_vector("1\nfoo\n", "b.txt"),
            Err(SolverError::Parse { line: 2, .. })
        ));
        assert_eq!(
            parse_vector("%%MatrixMarket matrix array real general\n2 1\n1\n2\n", "b").unwrap(),
            vec![1.0, 2.0]
        );
        assert!(
            parse_vector("%%MatrixMarket matrix array real general\n3 1\n1\n2\n", "b").is_err()
        );
        assert!(parse_vector("", "b").is_err());
    }

    #[test]
    fn a_written_matrix_reads_back() {
        let p = crate::poisson::Poisson::with_disc(6, 0.5, 0.5, 0.2).unwrap();
        let dir = std::env::temp_dir().join(format!("gradlab-mtx-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("A.mtx");
        write_matrix(&f, &p.a).unwrap();
        assert_eq!(read_matrix(&f).unwrap(), p.a);
        std::fs::remove_dir_all(&dir).ok();
    }
}
