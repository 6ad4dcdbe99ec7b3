use super::*;

const MAGIC: [u8; 8] = *b"TESTLOG1";

fn entries(log: &SegmentLog) -> Vec<(u64, Vec<u8>)> {
    let mut out = Vec::new();
    log.for_each_from(1, |i, _, p| {
        out.push((i, p.to_vec()));
        Ok::<_, SegmentError>(())
    })
    .unwrap();
    out
}

/// Writes `bytes` into the file at `path`, at `offset`, behind the log's back.
fn write_at(path: &Path, offset: u64, bytes: &[u8]) {
    OpenOptions::new()
        .write(true)
        .open(path)
        .unwrap()
        .write_all_at(bytes, offset)
        .unwrap();
}

/// Where the frames of a segment file end (the zeros written ahead of them follow).
fn frames_end(path: &Path) -> u64 {
    written_end(&fs::read(path).unwrap(), 0) as u64
}

#[test]
fn appends_numbered_entries_across_segments_and_reopens() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, rec) = SegmentLog::open_with(dir.path(), MAGIC, 64).unwrap();
    assert_eq!(rec.entries, 0);
    let mut positions = Vec::new();
    for i in 0..10u8 {
        positions.extend(log.append(&[vec![i; 20], vec![i + 100; 3]]).unwrap());
    }
    assert_eq!(log.next_index(), 21);
    assert!(list_segments(dir.path()).unwrap().len() > 1);
    assert_eq!(
        SegmentReader::new(dir.path()).read(positions[5]).unwrap(),
        vec![102; 3]
    );
    drop(log);
    let (log, rec) = SegmentLog::open_with(dir.path(), MAGIC, 64).unwrap();
    assert_eq!(rec.entries, 20);
    let all = entries(&log);
    assert_eq!(all.len(), 20);
    assert_eq!(all[0], (1, vec![0; 20]));
    assert_eq!(all[19], (20, vec![109; 3]));
    let mut tail = Vec::new();
    log.for_each_from(18, |i, _, _| {
        tail.push(i);
        Ok::<_, SegmentError>(())
    })
    .unwrap();
    assert_eq!(tail, vec![18, 19, 20]);
}

#[test]
fn overwrite_replaces_payloads_in_place_across_segments_and_appends_go_on() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) = SegmentLog::open_with(dir.path(), MAGIC, 64).unwrap();
    let mut positions = Vec::new();
    for i in 0..6u8 {
        positions.extend(log.append(&[vec![i; 20]]).unwrap());
    }
    let (first, last) = (positions[0], positions[5]);
    assert_ne!(
        first.segment, last.segment,
        "spans segments, the active one included"
    );
    log.overwrite(&[(first, vec![0xee; 20]), (last, vec![0xdd; 20])])
        .unwrap();
    // The active segment's file was replaced: appends must land in the new one.
    let appended = log.append(&[vec![42; 5]]).unwrap()[0];
    assert!(
        log.overwrite(&[(positions[1], vec![1; 3])]).is_err(),
        "another length is refused"
    );
    // A rewrite cut short by a crash leaves a .tmp that opening deletes.
    fs::write(dir.path().join("00000000000000000001.seg.tmp"), b"stale").unwrap();
    drop(log);
    let (log, rec) = SegmentLog::open_with(dir.path(), MAGIC, 64).unwrap();
    assert_eq!(rec.entries, 7);
    assert!(!dir.path().join("00000000000000000001.seg.tmp").exists());
    let reader = SegmentReader::new(dir.path());
    assert_eq!(reader.read(first).unwrap(), vec![0xee; 20]);
    assert_eq!(reader.read(last).unwrap(), vec![0xdd; 20]);
    assert_eq!(reader.read(positions[2]).unwrap(), vec![2; 20]);
    assert_eq!(reader.read(appended).unwrap(), vec![42; 5]);
    let mut seen = Vec::new();
    log.for_each_from(1, |i, _, p| {
        seen.push((i, p[0]));
        Ok::<_, SegmentError>(())
    })
    .unwrap();
    assert_eq!(
        seen,
        vec![
            (1, 0xee),
            (2, 1),
            (3, 2),
            (4, 3),
            (5, 4),
            (6, 0xdd),
            (7, 42)
        ]
    );
}

#[test]
fn marks_are_not_entries_and_the_last_intact_one_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) = SegmentLog::open(dir.path(), MAGIC).unwrap();
    log.append_marked(&[b"a", b"b"], Some(b"m1")).unwrap();
    log.append_marked::<&[u8]>(&[], Some(b"m2")).unwrap();
    log.append(&[b"c"]).unwrap();
    drop(log);
    let (mut log, rec) = SegmentLog::open(dir.path(), MAGIC).unwrap();
    assert_eq!((rec.entries, log.next_index()), (3, 4));
    assert_eq!(log.last_mark(), Some(&b"m2"[..]));
    let payloads: Vec<Vec<u8>> = entries(&log).into_iter().map(|(_, p)| p).collect();
    assert_eq!(payloads, [b"a".to_vec(), b"b".to_vec(), b"c".to_vec()]);
    let scanned = scan_read_only(dir.path(), MAGIC, |_, _| {}).unwrap();
    assert_eq!(
        (scanned.entries, scanned.last_mark.as_deref()),
        (3, Some(&b"m2"[..]))
    );
    // A mark torn off with its write: the entries before it stand, the last whole mark is
    // the one before.
    log.append_marked(&[b"d"], Some(b"m3")).unwrap();
    drop(log);
    let path = segment_path(dir.path(), 1);
    let len = frames_end(&path);
    write_at(&path, len - 1, &[0]);
    let (log, rec) = SegmentLog::open(dir.path(), MAGIC).unwrap();
    assert_eq!((rec.entries, rec.truncated_bytes), (4, 9));
    assert_eq!(log.last_mark(), Some(&b"m2"[..]));
}

#[test]
fn torn_tail_is_cut_and_quarantined() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) = SegmentLog::open(dir.path(), MAGIC).unwrap();
    log.append(&[b"one".to_vec(), b"two".to_vec()]).unwrap();
    drop(log);
    let seg = segment_path(dir.path(), 1);
    let f = OpenOptions::new().write(true).open(&seg).unwrap();
    // Half a frame header, where the next write would have gone.
    f.write_all_at(&[9, 0, 0, 0, 1, 2], frames_end(&seg))
        .unwrap();
    drop(f);
    let (mut log, rec) = SegmentLog::open(dir.path(), MAGIC).unwrap();
    assert_eq!(rec.entries, 2);
    assert_eq!(rec.truncated_bytes, 6);
    log.append(&[b"three".to_vec()]).unwrap();
    assert_eq!(entries(&log).last().unwrap(), &(3, b"three".to_vec()));
    let quarantined = fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".quarantine"))
        .count();
    assert_eq!(quarantined, 1);
}

#[test]
fn a_bad_frame_in_a_protected_entry_is_corruption_not_a_torn_tail() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) = SegmentLog::open(dir.path(), MAGIC).unwrap();
    log.append(&[b"one".to_vec(), b"two".to_vec(), b"three".to_vec()])
        .unwrap();
    drop(log);
    let seg = segment_path(dir.path(), 1);
    let mut data = fs::read(&seg).unwrap();
    let last = frames_end(&seg) as usize - 1;
    data[last] ^= 1; // the payload of entry 3
    fs::write(&seg, &data).unwrap();
    match SegmentLog::open_protecting(dir.path(), MAGIC, DEFAULT_SEGMENT_BYTES, 3) {
        Err(SegmentError::Corrupt { index, .. }) => assert_eq!(index, 3),
        other => panic!("expected corruption, got {:?}", other.map(|_| ())),
    }
    assert_eq!(fs::read(&seg).unwrap(), data, "nothing was cut");
    // Unprotected, the same bytes are a torn tail.
    let (log, rec) = SegmentLog::open(dir.path(), MAGIC).unwrap();
    assert_eq!((log.next_index(), rec.entries), (3, 2));
}

#[test]
fn corruption_before_the_tail_is_named_by_the_scan_not_paid_for_at_every_open() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) = SegmentLog::open_with(dir.path(), MAGIC, 40).unwrap();
    for _ in 0..4 {
        log.append(&[vec![7u8; 30]]).unwrap();
    }
    drop(log);
    // Entry 2 is the only entry of the second segment; flip a payload byte.
    let seg = segment_path(dir.path(), 2);
    let mut data = fs::read(&seg).unwrap();
    data[HEADER as usize + FRAME + 3] ^= 1;
    fs::write(&seg, data).unwrap();
    // Opening reads the last segment only (its cost does not grow with the log)...
    let (log, rec) = SegmentLog::open_with(dir.path(), MAGIC, 40).unwrap();
    assert_eq!((rec.entries, log.next_index()), (4, 5));
    // ...the scan that checks the whole log names the entry.
    match scan_read_only(dir.path(), MAGIC, |_, _| {}) {
        Err(SegmentError::Corrupt { index, what, .. }) => {
            assert_eq!(index, 2);
            assert_eq!(what, "checksum mismatch");
        }
        other => panic!("expected corruption, got {other:?}"),
    }
}

/// An indexed log finds entries by number from its index files; an index lost or cut short
/// is rebuilt from its segment, and the last segment's at every open.
#[test]
fn the_index_finds_every_entry_and_is_rebuilt_when_lost() {
    let dir = tempfile::tempdir().unwrap();
    let open = || {
        SegmentLog::open_indexed(dir.path(), MAGIC, 100, 0)
            .unwrap()
            .0
    };
    let mut log = open();
    let mut expected = Vec::new();
    for i in 0..20u8 {
        let batch = [vec![i; 10 + usize::from(i)], vec![i + 100; 3]];
        log.append_marked(&batch, Some(b"mark")).unwrap();
        expected.extend(batch);
    }
    assert!(list_segments(dir.path()).unwrap().len() > 3);
    let check = |log: &SegmentLog| {
        let index = log.index().unwrap();
        let reader = SegmentReader::new(dir.path());
        assert_eq!(index.entries(), expected.len() as u64);
        for (i, payload) in expected.iter().enumerate() {
            let pos = index.position(i as u64 + 1).unwrap();
            assert_eq!(&reader.read(pos).unwrap(), payload, "entry {}", i + 1);
        }
        assert!(matches!(
            index.position(expected.len() as u64 + 1),
            Err(SegmentError::Missing(_))
        ));
        // Read as a batch (advised to the kernel first): the same entries, in the order asked,
        // across segments, repeats included; a batch with an entry past the end fails whole.
        let asked: Vec<u64> = [40, 1, 17, 2, 40, 23, 9]
            .into_iter()
            .filter(|&i| i <= expected.len() as u64)
            .collect();
        assert!(asked.len() > 4, "the batch spans segments");
        let positions = index.positions(&asked, index.last_segment()).unwrap();
        let read = reader.read_many(&positions, index.last_segment()).unwrap();
        let wanted: Vec<&Vec<u8>> = asked.iter().map(|&i| &expected[i as usize - 1]).collect();
        assert_eq!(read.iter().collect::<Vec<_>>(), wanted);
        assert!(matches!(
            index.positions(&[1, expected.len() as u64 + 1], 0),
            Err(SegmentError::Missing(n)) if n == expected.len() as u64 + 1
        ));
        assert!(index.positions(&[], 0).unwrap().is_empty());
    };
    check(&log);
    drop(log);
    let segments = list_segments(dir.path()).unwrap();
    fs::remove_file(index_path(dir.path(), segments[0])).unwrap();
    let second = index_path(dir.path(), segments[1]);
    let len = fs::metadata(&second).unwrap().len();
    OpenOptions::new()
        .write(true)
        .open(&second)
        .unwrap()
        .set_len(len - 5)
        .unwrap();
    fs::remove_file(index_path(dir.path(), *segments.last().unwrap())).unwrap();
    check(&open());
}

#[test]
fn a_segment_from_another_log_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) = SegmentLog::open(dir.path(), MAGIC).unwrap();
    log.append(&[b"x".to_vec()]).unwrap();
    drop(log);
    assert!(matches!(
        SegmentLog::open(dir.path(), *b"OTHERLOG"),
        Err(SegmentError::Corrupt { .. })
    ));
}

#[test]
fn zeros_written_ahead_are_the_clean_end_and_appends_go_on_before_them() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) = SegmentLog::open(dir.path(), MAGIC).unwrap();
    log.append_marked(&[b"one", b"two"], Some(b"m1")).unwrap();
    drop(log);
    let seg = segment_path(dir.path(), 1);
    let (len, end) = (fs::metadata(&seg).unwrap().len(), frames_end(&seg));
    assert_eq!(len, PREALLOC_CHUNK, "zeros written ahead to the chunk");
    assert!(end < len);
    let (mut log, rec) = SegmentLog::open(dir.path(), MAGIC).unwrap();
    assert_eq!((rec.entries, rec.truncated_bytes), (2, 0));
    assert_eq!(log.last_mark(), Some(&b"m1"[..]));
    // The next write lands at the frames' end, inside the room already made.
    log.append(&[b"three"]).unwrap();
    assert_eq!(fs::metadata(&seg).unwrap().len(), len);
    assert_eq!(frames_end(&seg), end + FRAME as u64 + 5);
    // A batch larger than the room left makes more, in the same write.
    let big = vec![0xab_u8; PREALLOC_CHUNK as usize];
    log.append(&[&big]).unwrap();
    assert_eq!(fs::metadata(&seg).unwrap().len(), 2 * PREALLOC_CHUNK);
    drop(log);
    let scanned = scan_read_only(dir.path(), MAGIC, |_, _| {}).unwrap();
    assert_eq!(scanned.entries, 4);
    let (log, rec) = SegmentLog::open(dir.path(), MAGIC).unwrap();
    assert_eq!((rec.entries, rec.truncated_bytes), (4, 0));
    assert_eq!(entries(&log)[3].1, big);
}

/// A batch that fits in the room already made writes its frames and nothing after them: the
/// zeros ahead are on disk from the batch that made the room, and writing them again would have
/// every sync flush up to a chunk of unchanged pages (a byte planted past the frames shows it).
#[test]
fn a_batch_within_the_room_writes_only_its_frames() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) = SegmentLog::open(dir.path(), MAGIC).unwrap();
    log.append_marked(&[b"one"], Some(b"m1")).unwrap();
    let seg = segment_path(dir.path(), 1);
    let planted_at = frames_end(&seg) + 4096;
    write_at(&seg, planted_at, &[0x77]);
    log.append_marked(&[b"two".as_slice(), b"three"], Some(b"m2"))
        .unwrap();
    let data = fs::read(&seg).unwrap();
    assert_eq!(data.len() as u64, PREALLOC_CHUNK, "no new room was made");
    assert_eq!(
        data[planted_at as usize], 0x77,
        "the batch wrote past its frames"
    );
    // With the planted byte gone, the frames end in zeros again: the clean end.
    write_at(&seg, planted_at, &[0]);
    drop(log);
    let (log, rec) = SegmentLog::open(dir.path(), MAGIC).unwrap();
    assert_eq!((rec.entries, rec.truncated_bytes), (3, 0));
    assert_eq!(log.last_mark(), Some(&b"m2"[..]));
}

/// Once less than half a chunk of room is left, the next chunk is made ahead by the helper, so
/// the batch that reaches the end of the room finds more and grows nothing itself; a rotation
/// waits for a chunk being made and cuts the finished segment to its frames all the same.
#[test]
fn room_is_made_ahead_of_the_writer_and_finished_segments_are_still_cut() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) = SegmentLog::open_with(dir.path(), MAGIC, 4 * PREALLOC_CHUNK).unwrap();
    let entry = vec![0x5c_u8; (PREALLOC_CHUNK / 3) as usize];
    let seg = segment_path(dir.path(), 1);
    log.append(&[&entry]).unwrap();
    assert_eq!(log.room.made(true), None, "room enough: nothing asked");
    log.append(&[&entry]).unwrap();
    // Less than half a chunk left: the next one is made, by the helper.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while fs::metadata(&seg).unwrap().len() < 2 * PREALLOC_CHUNK {
        assert!(std::time::Instant::now() < deadline, "no room made ahead");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    // The batch past the first chunk writes its frames only, into the room made ahead (bytes
    // planted at the end of that room stay).
    let third = [0x77_u8; 16];
    write_at(&seg, 2 * PREALLOC_CHUNK - 16, &third);
    log.append(&[&entry]).unwrap();
    let data = fs::read(&seg).unwrap();
    assert_eq!(
        data[(2 * PREALLOC_CHUNK - 16) as usize..],
        third,
        "it wrote past its frames"
    );
    write_at(&seg, 2 * PREALLOC_CHUNK - 16, &[0; 16]);
    // On through rotations, chunks made ahead or not: every entry back, finished segments cut.
    for _ in 0..20 {
        log.append(&[&entry]).unwrap();
    }
    drop(log);
    let segments = list_segments(dir.path()).unwrap();
    assert!(segments.len() >= 2);
    for &first in &segments[..segments.len() - 1] {
        let path = segment_path(dir.path(), first);
        assert_eq!(fs::metadata(&path).unwrap().len(), frames_end(&path));
    }
    let (log, rec) = SegmentLog::open_with(dir.path(), MAGIC, 4 * PREALLOC_CHUNK).unwrap();
    assert_eq!((rec.entries, rec.truncated_bytes), (23, 0));
    assert!(entries(&log).iter().all(|(_, e)| *e == entry));
}

#[test]
fn a_finished_segment_is_cut_to_its_frames() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) = SegmentLog::open_with(dir.path(), MAGIC, 64).unwrap();
    for i in 0..6u8 {
        log.append(&[vec![i + 1; 40]]).unwrap();
    }
    let segments = list_segments(dir.path()).unwrap();
    assert!(segments.len() > 2);
    for &first in &segments[..segments.len() - 1] {
        let path = segment_path(dir.path(), first);
        assert_eq!(fs::metadata(&path).unwrap().len(), frames_end(&path));
    }
    let last = segment_path(dir.path(), *segments.last().unwrap());
    assert_eq!(fs::metadata(&last).unwrap().len(), PREALLOC_CHUNK);
}

#[test]
fn a_torn_write_with_a_lost_sector_is_cut_whole_so_no_stray_frame_outlives_it() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) = SegmentLog::open(dir.path(), MAGIC).unwrap();
    log.append(&[b"one"]).unwrap();
    drop(log);
    // A batch's write torn by a power cut: its first sector never reached the disk (still
    // zeros), a later one did, holding a whole, valid frame.
    let seg = segment_path(dir.path(), 1);
    let end = frames_end(&seg);
    let mut stray = Vec::new();
    push_frame(&mut stray, 5, b"ghost");
    let f = OpenOptions::new().write(true).open(&seg).unwrap();
    f.write_all_at(&stray, end + 512).unwrap();
    drop(f);
    let (mut log, rec) = SegmentLog::open(dir.path(), MAGIC).unwrap();
    assert_eq!((rec.entries, rec.truncated_bytes), (1, 512 + 13));
    // The next write is shorter than the gap: had the stray frame been left, it would follow
    // this write's frames and be read as an entry.
    log.append(&[b"two"]).unwrap();
    drop(log);
    let (log, rec) = SegmentLog::open(dir.path(), MAGIC).unwrap();
    assert_eq!((rec.entries, rec.truncated_bytes), (2, 0));
    let payloads: Vec<Vec<u8>> = entries(&log).into_iter().map(|(_, p)| p).collect();
    assert_eq!(payloads, [b"one".to_vec(), b"two".to_vec()]);
    assert_eq!(
        scan_read_only(dir.path(), MAGIC, |_, _| {})
            .unwrap()
            .entries,
        2
    );
}

/// A batch's attachments are written before its entries, found by their positions, and are not
/// entries: not numbered, not in the index, not in scans, whatever the segment they are in.
#[test]
fn attachments_ride_with_their_batch_and_are_not_entries() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) = SegmentLog::open_indexed(dir.path(), MAGIC, 200, 0).unwrap();
    let mut attached = Vec::new();
    for i in 0..6u8 {
        let (a, e) = log
            .append_batch(&[vec![100 + i; 10]], &[vec![i; 5], vec![i; 6]], Some(b"m"))
            .unwrap();
        assert_eq!(e.len(), 2);
        attached.extend(a);
    }
    assert_eq!(log.next_index(), 13);
    assert!(list_segments(dir.path()).unwrap().len() > 1);
    let reader = SegmentReader::new(dir.path());
    assert_eq!(reader.read(attached[4]).unwrap(), vec![104; 10]);
    let index = log.index().unwrap();
    assert_eq!(reader.read(index.position(3).unwrap()).unwrap(), vec![1; 5]);
    drop(log);
    let (log, rec) = SegmentLog::open_indexed(dir.path(), MAGIC, 200, 0).unwrap();
    assert_eq!((rec.entries, rec.truncated_bytes), (12, 0));
    let numbered: Vec<u64> = entries(&log).into_iter().map(|(i, _)| i).collect();
    assert_eq!(numbered, (1..=12).collect::<Vec<_>>());
    let scanned = scan_read_only(dir.path(), MAGIC, |_, p| assert!(p.len() < 10)).unwrap();
    assert_eq!(scanned.entries, 12);
    let mut seen = Vec::new();
    scan_attachments(dir.path(), MAGIC, |pos, p| seen.push((pos, p[0]))).unwrap();
    assert_eq!(
        seen,
        attached.iter().copied().zip(100..106).collect::<Vec<_>>()
    );
    // From an entry on: the attachments of its batch and of those after, none before.
    let mut from = Vec::new();
    log.for_each_frame_from(5, |item| {
        from.push(match item {
            Item::Entry(i, _, _) => format!("e{i}"),
            Item::Attachment(_, p) => format!("a{}", p[0]),
        });
        Ok::<_, SegmentError>(())
    })
    .unwrap();
    assert_eq!(
        from.join(" "),
        "a102 e5 e6 a103 e7 e8 a104 e9 e10 a105 e11 e12"
    );
}

/// Attachments at the end of the log are a batch whose entries never reached the disk: they are
/// cut with the torn write, and the log goes on where that batch began.
#[test]
fn attachments_at_the_end_are_a_torn_batch_and_cut() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) = SegmentLog::open(dir.path(), MAGIC).unwrap();
    log.append_batch(&[b"body1"], &[b"rec1"], Some(b"m1"))
        .unwrap();
    drop(log);
    let path = segment_path(dir.path(), 1);
    let mut orphan = Vec::new();
    push_frame(&mut orphan, 5 | ATTACHMENT, b"body2");
    write_at(&path, frames_end(&path), &orphan);
    let attachments = |dir: &Path| {
        let mut seen = Vec::new();
        scan_attachments(dir, MAGIC, |_, p| seen.push(p.to_vec())).unwrap();
        seen
    };
    assert_eq!(
        attachments(dir.path()).len(),
        2,
        "the orphan is a whole frame"
    );
    let (mut log, rec) = SegmentLog::open(dir.path(), MAGIC).unwrap();
    assert_eq!((rec.entries, rec.truncated_bytes), (1, orphan.len() as u64));
    assert_eq!(attachments(dir.path()), [b"body1".to_vec()]);
    log.append_batch(&[b"body3"], &[b"rec2"], Some(b"m2"))
        .unwrap();
    assert_eq!(
        attachments(dir.path()),
        [b"body1".to_vec(), b"body3".to_vec()]
    );
    assert_eq!(
        entries(&log),
        [(1, b"rec1".to_vec()), (2, b"rec2".to_vec())]
    );
}

/// An attachment overwritten (a body erased) stays an attachment of the same length, readable
/// where it was; the old bytes are gone from the file.
#[test]
fn an_attachment_overwritten_stays_an_attachment() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) = SegmentLog::open(dir.path(), MAGIC).unwrap();
    let (a, _) = log
        .append_batch(&[b"secret"], &[b"rec"], Some(b"m"))
        .unwrap();
    log.overwrite(&[(a[0], b"erased".to_vec())]).unwrap();
    assert_eq!(
        SegmentReader::new(dir.path()).read(a[0]).unwrap(),
        b"erased"
    );
    log.append_batch(&[b"next"], &[b"rec2"], Some(b"m2"))
        .unwrap();
    drop(log);
    let bytes = fs::read(segment_path(dir.path(), 1)).unwrap();
    assert!(!bytes.windows(6).any(|w| w == b"secret"));
    let (log, rec) = SegmentLog::open(dir.path(), MAGIC).unwrap();
    assert_eq!((rec.entries, rec.truncated_bytes), (2, 0));
    let mut seen = Vec::new();
    scan_attachments(dir.path(), MAGIC, |_, p| seen.push(p.to_vec())).unwrap();
    assert_eq!(seen, [b"erased".to_vec(), b"next".to_vec()]);
    assert_eq!(log.last_mark(), Some(&b"m2"[..]));
}

/// The scans read a segment a chunk at a time: frames that straddle chunks (and entries larger
/// than a chunk) come out whole, corruption past the first chunk is named where it is, and
/// zeros after the last frame are the clean end however many chunks they fill, but not if a
/// byte past them is set.
#[test]
fn scans_read_a_segment_in_chunks_and_find_frames_across_them() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) = SegmentLog::open_with(dir.path(), MAGIC, 64 << 20).unwrap();
    let sizes = [
        100,
        stream::CHUNK - 40,
        stream::CHUNK + stream::CHUNK / 2,
        7,
        MAX_ENTRY,
        3,
    ];
    let written: Vec<Vec<u8>> = sizes
        .iter()
        .enumerate()
        .map(|(i, &n)| vec![i as u8 + 1; n])
        .collect();
    for entry in &written {
        log.append(std::slice::from_ref(entry)).unwrap();
    }
    drop(log);
    let seg = segment_path(dir.path(), 1);
    assert_eq!(list_segments(dir.path()).unwrap(), vec![1]);
    let mut seen = Vec::new();
    let scanned = scan_read_only(dir.path(), MAGIC, |i, p| seen.push((i, p.to_vec()))).unwrap();
    assert_eq!(scanned.entries, 6);
    let expected: Vec<(u64, Vec<u8>)> = (1..).zip(written.iter().cloned()).collect();
    assert_eq!(seen, expected);
    let mut from_4 = Vec::new();
    scan_range(dir.path(), MAGIC, 4, 5, |i, p| from_4.push((i, p.len()))).unwrap();
    assert_eq!(from_4, vec![(4, 7), (5, MAX_ENTRY)]);

    // Zeros filling several chunks after the last frame: the clean end.
    let end = frames_end(&seg);
    let file = OpenOptions::new().write(true).open(&seg).unwrap();
    file.set_len(end + 3 * stream::CHUNK as u64 + 5).unwrap();
    assert_eq!(
        scan_read_only(dir.path(), MAGIC, |_, _| {})
            .unwrap()
            .entries,
        6
    );
    // A byte set at the far end of them: what precedes it is no clean end.
    write_at(&seg, end + 3 * stream::CHUNK as u64 + 4, &[1]);
    match scan_read_only(dir.path(), MAGIC, |_, _| {}) {
        Err(SegmentError::Corrupt { index, offset, .. }) => assert_eq!((index, offset), (7, end)),
        other => panic!("expected corruption, got {other:?}"),
    }
    write_at(&seg, end + 3 * stream::CHUNK as u64 + 4, &[0]);

    // A payload byte flipped in the fifth entry, chunks past the start of the file.
    let fifth = HEADER as usize + written[..4].iter().map(|e| FRAME + e.len()).sum::<usize>();
    assert!(fifth > 2 * stream::CHUNK);
    write_at(&seg, (fifth + FRAME + MAX_ENTRY / 2) as u64, &[0xff]);
    match scan_read_only(dir.path(), MAGIC, |_, _| {}) {
        Err(SegmentError::Corrupt {
            index,
            offset,
            what,
            ..
        }) => assert_eq!(
            (index, offset, what),
            (5, fifth as u64, "checksum mismatch")
        ),
        other => panic!("expected corruption, got {other:?}"),
    }
}
