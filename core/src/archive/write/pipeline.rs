//! The parallel part of writing: files read in 1 MiB chunks, deflated on a worker pool
//! (each chunk primed with the 32 KiB before it, pigz style), handed back in order.

use super::*;

pub(super) struct Job {
    pub(super) item: usize,
    pub(super) offset: u64,
    pub(super) len: usize,
    pub(super) last: bool,
    /// The only chunk of its file: the worker also hashes it.
    pub(super) whole: bool,
    /// Sequence number of the last chunk of the same file.
    pub(super) last_seq: usize,
}

pub(super) struct Chunk {
    pub(super) data: Vec<u8>,
    /// The uncompressed input, kept for hashing when the file spans several chunks.
    pub(super) raw: Option<Vec<u8>>,
    pub(super) crc: crc32fast::Hasher,
    pub(super) len: u64,
    pub(super) method: u16,
    pub(super) sha: Option<[u8; 32]>,
}

#[derive(Default)]
pub(super) struct Flow {
    pub(super) next: usize,
    pub(super) consumed: usize,
    pub(super) stop: bool,
}

pub(super) fn write_all(
    capsule: &Capsule,
    items: &[Item],
    out: &mut Out,
    options: &ArchiveOptions,
) -> Result<ArchiveReport> {
    let cancel = &options.cancel;
    let mut jobs = Vec::new();
    let mut progress = Progress::default();
    for (i, item) in items.iter().enumerate() {
        if item.kind != EntryKind::File {
            continue;
        }
        progress.files_total += 1;
        progress.bytes_total += item.size;
        let n = item.size.div_ceil(CHUNK as u64).max(1);
        let last_seq = jobs.len() + n as usize - 1;
        for c in 0..n {
            let offset = c * CHUNK as u64;
            jobs.push(Job {
                item: i,
                offset,
                len: (item.size - offset).min(CHUNK as u64) as usize,
                last: c + 1 == n,
                whole: n == 1,
                last_seq,
            });
        }
    }
    let threads = worker_count(options.threads);
    // Chunks in flight (read, compressed, or waiting to be written): bounds memory to about
    // 2 MiB each, and is wide enough for every worker to have a file of its own going.
    let inflight = threads * 8;
    let flow = Mutex::new(Flow::default());
    let wake = Condvar::new();
    let (tx, rx) = mpsc::channel::<(usize, Result<Chunk>)>();
    let level = options.level;

    std::thread::scope(|s| {
        for _ in 0..threads {
            let tx = tx.clone();
            let (jobs, flow, wake) = (&jobs, &flow, &wake);
            s.spawn(move || {
                let mut open: Option<(usize, File)> = None;
                // Wait until chunk `seq` fits in the window; false when stopping.
                let admit = |seq: usize| {
                    let mut f = flow.lock().unwrap_or_else(|p| p.into_inner());
                    while !f.stop && seq >= f.consumed + inflight {
                        f = wake.wait(f).unwrap_or_else(|p| p.into_inner());
                    }
                    !f.stop && !cancel.is_cancelled()
                };
                'claim: loop {
                    // Deflated files are shared out chunk by chunk (compression is the work);
                    // a stored file goes whole to one worker, which hashes it as it reads, so
                    // SHA-256 runs on every core too.
                    let (first, last) = {
                        let mut f = flow.lock().unwrap_or_else(|p| p.into_inner());
                        while !f.stop && f.next < jobs.len() && f.next >= f.consumed + inflight {
                            f = wake.wait(f).unwrap_or_else(|p| p.into_inner());
                        }
                        if f.stop || f.next >= jobs.len() || cancel.is_cancelled() {
                            break;
                        }
                        let first = f.next;
                        let j = &jobs[first];
                        let last = if items[j.item].deflate {
                            first
                        } else {
                            j.last_seq
                        };
                        f.next = last + 1;
                        (first, last)
                    };
                    let mut hasher = (last > first).then(Sha256::new);
                    for (seq, job) in jobs.iter().enumerate().take(last + 1).skip(first) {
                        if seq > first && !admit(seq) {
                            break 'claim;
                        }
                        let mut r = run_job(job, items, &mut open, level);
                        if let (Some(h), Ok(chunk)) = (hasher.as_mut(), r.as_mut()) {
                            h.update(&chunk.data);
                            if seq == last {
                                chunk.sha = Some(h.finalize_reset().into());
                            }
                        }
                        let failed = r.is_err();
                        if tx.send((seq, r)).is_err() {
                            break 'claim;
                        }
                        if failed {
                            break;
                        }
                    }
                }
            });
        }
        drop(tx);
        let result = write_entries(
            capsule, items, &jobs, out, options, &rx, &flow, &wake, progress,
        );
        flow.lock().unwrap_or_else(|p| p.into_inner()).stop = true;
        wake.notify_all();
        drop(rx);
        result
    })
}

pub(super) fn run_job(
    job: &Job,
    items: &[Item],
    open: &mut Option<(usize, File)>,
    level: u32,
) -> Result<Chunk> {
    let item = &items[job.item];
    let dict = if item.deflate {
        (job.offset as usize).min(WINDOW)
    } else {
        0
    };
    let mut buf = match &item.inline {
        Some(data) => data.clone(),
        None => read_chunk(job, item, open, dict)?,
    };
    let input = &buf[dict..];
    let mut crc = crc32fast::Hasher::new();
    crc.update(input);
    let sha = job.whole.then(|| Sha256::digest(input).into());
    if !item.deflate {
        let raw = buf.split_off(dict);
        return Ok(Chunk {
            data: raw,
            raw: None,
            crc,
            len: job.len as u64,
            method: METHOD_STORED,
            sha,
        });
    }
    // Incompressible chunks (rendered media under a generic name, say) go into the deflate
    // stream as stored blocks: no time spent searching for matches that are not there.
    let incompressible = looks_incompressible(input);
    let mut c = Compress::new(
        if incompressible {
            Compression::none()
        } else {
            Compression::new(level)
        },
        false,
    );
    if dict > 0 && !incompressible {
        c.set_dictionary(&buf[..dict])
            .map_err(|e| Error::io("compress", &item.src, std::io::Error::other(e)))?;
    }
    let flush = if job.last {
        FlushCompress::Finish
    } else {
        FlushCompress::Sync
    };
    let mut data = Vec::with_capacity(input.len() + input.len() / 64 + 1024);
    let mut consumed = 0usize;
    loop {
        if data.capacity() - data.len() < 16 << 10 {
            data.reserve(256 << 10);
        }
        let before = c.total_in();
        let status = c
            .compress_vec(&input[consumed..], &mut data, flush)
            .map_err(|e| Error::io("compress", &item.src, std::io::Error::other(e)))?;
        consumed += (c.total_in() - before) as usize;
        let done = match flush {
            FlushCompress::Finish => status == Status::StreamEnd,
            _ => consumed == input.len() && data.len() < data.capacity(),
        };
        if done {
            break;
        }
    }
    if job.whole && data.len() >= input.len() {
        // Incompressible single-chunk file: store it instead.
        let raw = buf.split_off(dict);
        return Ok(Chunk {
            data: raw,
            raw: None,
            crc,
            len: job.len as u64,
            method: METHOD_STORED,
            sha,
        });
    }
    Ok(Chunk {
        data,
        raw: (!job.whole).then(|| buf.split_off(dict)),
        crc,
        len: job.len as u64,
        method: METHOD_DEFLATED,
        sha,
    })
}

/// Read a job's chunk (with `dict` bytes before it), checking the file against its walked
/// stamp when it is opened and after every read: a chunk read before a change matches the
/// stamp, a chunk read during or after it does not.
pub(super) fn read_chunk(
    job: &Job,
    item: &Item,
    open: &mut Option<(usize, File)>,
    dict: usize,
) -> Result<Vec<u8>> {
    if open.as_ref().is_none_or(|(i, _)| *i != job.item) {
        let f = File::open(&item.src).map_err(Error::io_at("open", &item.src))?;
        if let Some(stamp) = &item.stamp {
            stamp.check(&f, &item.src)?;
        }
        *open = Some((job.item, f));
    }
    let file = &open.as_ref().expect("just opened").1;
    let mut buf = vec![0u8; dict + job.len];
    read_exact_at(file, &mut buf, job.offset - dict as u64).map_err(|e| {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            Error::Changed {
                path: item.src.clone(),
                reason: "the file shrank while it was being archived; archive again when it \
                         is not being written"
                    .into(),
            }
        } else {
            Error::io("read", &item.src, e)
        }
    })?;
    if let Some(stamp) = &item.stamp {
        stamp.check(file, &item.src)?;
    }
    Ok(buf)
}

/// Sample three 16 KiB windows of a chunk at the fastest level: if they do not shrink by
/// 3 %, the chunk is not worth compressing. Costs about 2 % of compressing the chunk.
pub(super) fn looks_incompressible(input: &[u8]) -> bool {
    const WIN: usize = 16 << 10;
    if input.len() < 4 * WIN {
        return false;
    }
    let mut out = Vec::with_capacity(WIN + 1024);
    let (mut raw, mut packed) = (0usize, 0usize);
    for at in [0, input.len() / 2 - WIN / 2, input.len() - WIN] {
        let window = &input[at..at + WIN];
        let mut c = Compress::new(Compression::fast(), false);
        out.clear();
        match c.compress_vec(window, &mut out, FlushCompress::Finish) {
            Ok(Status::StreamEnd) => packed += out.len(),
            // Output buffer full: larger than the input plus slack, so incompressible.
            Ok(_) => packed += WIN + 1024,
            Err(_) => return false,
        }
        raw += WIN;
    }
    packed * 100 >= raw * 97
}

pub(super) fn deflate_all(body: &[u8], level: u32) -> Vec<u8> {
    let mut e = flate2::write::DeflateEncoder::new(Vec::new(), Compression::new(level));
    // Writing to a Vec cannot fail.
    let _ = e.write_all(body);
    e.finish().unwrap_or_default()
}
