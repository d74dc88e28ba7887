//! Backs a SQLite store up to a store file (JSON Lines) and restores it into a new one.
//!
//! ```sh
//! cargo run --example backup -- export customers.db backup.jsonl
//! cargo run --example backup -- import backup.jsonl restored.db
//! ```
//!
//! The restored store holds the same customers, ids included. The same file restores
//! into any backend (see `oneview::io`), which is also how to move between backends or
//! across releases. Progress goes to stderr; the counts to stdout as one JSON line.

use std::error::Error;
use std::fs::File;
use std::io::{BufReader, BufWriter};
use std::path::PathBuf;
use std::time::Instant;

use oneview::io::{Progress, read_store, write_store};
use oneview::{Customers, SqliteStore};

fn main() -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let started = Instant::now();
    let mut progress = |p: Progress| {
        eprint!(
            "\r{}: {} lines, {:.1} s",
            p.pass,
            p.lines,
            started.elapsed().as_secs_f64()
        );
    };
    let counts = match args.as_slice() {
        [verb, database, file] if verb == "export" => {
            let customers = Customers::new(SqliteStore::open(database)?);
            let out = BufWriter::new(File::create(file)?);
            write_store(&customers, out, &mut progress)?
        }
        [verb, file, database] if verb == "import" => {
            if PathBuf::from(database).exists() {
                return Err(format!("{database} exists: import only into a new store").into());
            }
            let customers = Customers::new(SqliteStore::open(database)?);
            let input = BufReader::new(File::open(file)?);
            read_store(&customers, input, &mut progress)?
        }
        _ => {
            eprintln!("usage: backup export DATABASE FILE\n       backup import FILE NEW_DATABASE");
            std::process::exit(2);
        }
    };
    eprintln!(
        "\rdone in {:.1} s{:20}",
        started.elapsed().as_secs_f64(),
        ""
    );
    println!("{}", serde_json::to_string(&counts)?);
    Ok(())
}
