//! `koogate-infra`: prints infra/template.yaml as generated; `--write` writes it, `--check` fails
//! when the checked-in file differs (`make template` runs `--write`).

use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str = "usage: koogate-infra [--write | --check]
  (no flag)  print the generated infra/template.yaml on stdout
  --write    write it to infra/template.yaml
  --check    exit 1 when infra/template.yaml is not what would be generated";

/// The template in this checkout (the generator's own directory is infra/generator).
fn template_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("infra/generator has a parent directory")
        .join("template.yaml")
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mode = match args.as_slice() {
        [] => "print",
        [flag] if flag == "--write" => "write",
        [flag] if flag == "--check" => "check",
        [flag] if flag == "--help" || flag == "-h" => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let generated = match koogate_infra::generate() {
        Ok(text) => text,
        Err(e) => {
            eprintln!("koogate-infra: cannot generate the template: {e}");
            return ExitCode::FAILURE;
        }
    };
    let path = template_path();
    match mode {
        "print" => {
            print!("{generated}");
            ExitCode::SUCCESS
        }
        "write" => match std::fs::write(&path, &generated) {
            Ok(()) => {
                eprintln!("koogate-infra: wrote {}", path.display());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("koogate-infra: cannot write {}: {e}", path.display());
                ExitCode::FAILURE
            }
        },
        _ => {
            let checked_in = match std::fs::read_to_string(&path) {
                Ok(text) => text,
                Err(e) => {
                    eprintln!("koogate-infra: cannot read {}: {e}", path.display());
                    return ExitCode::FAILURE;
                }
            };
            match koogate_infra::first_difference(&checked_in, &generated) {
                None => ExitCode::SUCCESS,
                Some(difference) => {
                    eprintln!(
                        "koogate-infra: {} is not what the generator writes; run `make template` \
                         (and commit the result).\nFirst difference, {difference}",
                        path.display()
                    );
                    ExitCode::FAILURE
                }
            }
        }
    }
}
