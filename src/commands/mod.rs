//! One file per front door (`hook`, `run`, `connect`, `cni`) and per verb (`network`, `lease`,
//! `gc`, `doctor`); `examples` holds the help texts' examples.

pub(crate) mod cni;
pub(crate) mod connect;
pub(crate) mod doctor;
pub(crate) mod examples;
pub(crate) mod gc;
pub(crate) mod hook;
pub(crate) mod lease;
pub mod network;
pub(crate) mod run;

/// Output format of the listing commands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Json,
}

/// Print rows as left-aligned columns under a header.
fn print_table(header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut out = String::new();
        for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
            if i + 1 == cells.len() {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<w$}   "));
            }
        }
        println!("{}", out.trim_end());
    };
    line(header.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
}

fn print_json<T: serde::Serialize>(value: &T) -> crate::error::Result<()> {
    let text = serde_json::to_string_pretty(value)?;
    println!("{text}");
    Ok(())
}
