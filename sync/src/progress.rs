//! Progress of one version's copy: a bar on a terminal (bytes, files, rate), nothing but log lines otherwise.
use std::io::IsTerminal;
use std::sync::atomic::{AtomicUsize, Ordering};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

pub struct Progress {
    bar: Option<ProgressBar>,
    label: String,
    files: AtomicUsize,
    total_files: usize,
}

impl Progress {
    /// `show`: draw a bar, when stderr is a terminal too.
    pub fn new(show: bool, label: &str, total_bytes: u64, total_files: usize) -> Progress {
        let bar = (show && std::io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::with_draw_target(Some(total_bytes), ProgressDrawTarget::stderr());
            if let Ok(style) = ProgressStyle::with_template(
                "{msg} [{bar:30}] {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} eta {eta}",
            ) {
                bar.set_style(style.progress_chars("=> "));
            }
            bar.set_message(format!("{label}  0/{total_files} files"));
            bar
        });
        Progress {
            bar,
            label: label.to_string(),
            files: AtomicUsize::new(0),
            total_files,
        }
    }

    pub fn add_bytes(&self, n: u64) {
        if let Some(bar) = &self.bar {
            bar.inc(n);
        }
    }

    pub fn file_done(&self) {
        let done = self.files.fetch_add(1, Ordering::Relaxed) + 1;
        match &self.bar {
            Some(bar) => {
                bar.set_message(format!("{}  {done}/{} files", self.label, self.total_files))
            }
            None => tracing::debug!("{}: {done}/{} files", self.label, self.total_files),
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
