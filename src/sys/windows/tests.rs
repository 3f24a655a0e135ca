//! Tests of the Windows module, run under Wine 8 in CI
//! (`verify/wine/`). Tests that cross a process boundary run this test
//! binary again as a child (`std::env::current_exe()`), selecting one
//! `#[ignore]`d child test with `--ignored --exact`.

use std::os::windows::io::{AsHandle, OwnedHandle};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::ptr;
use std::sync::atomic::{AtomicUsize, Ordering};

use windows_sys::Win32::Security::Authorization::{
    ConvertStringSecurityDescriptorToSecurityDescriptorW, SDDL_REVISION_1,
};
use windows_sys::Win32::Security::SECURITY_ATTRIBUTES;
use windows_sys::Win32::Storage::FileSystem::{CreateFileW, CREATE_NEW, FILE_ATTRIBUTE_NORMAL};
use windows_sys::Win32::System::Memory::{CreateFileMappingW, PAGE_READWRITE};

use super::file::{
    create_new_file, delete_by_handle, file_facts, final_path, open_existing_file, reserve_file,
    set_file_len,
};
use super::handle::{owned, wide, LocalBox};
use super::memory::{alloc_private, allocation_granularity, cpu_count, free_private, page_size};
use super::section::{
    commit, committed_prefix, create_section, flush, map_view, open_section, View,
};
use super::security::{
    current_user_sid_string, dacl_lets_others_write, others_may_write, owner_is_current_user,
    sddl_lets_others_write, ObjectKind,
};

const ERROR_ACCESS_DENIED: i32 = 5;
const ERROR_FILE_EXISTS: i32 = 80;
const ERROR_ALREADY_EXISTS: i32 = 183;
const ERROR_USER_MAPPED_FILE: i32 = 1224;

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A fresh, empty folder under the temporary folder, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Self {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        // Wine reuses process ids from run to run: the time keeps a
        // folder a crashed run left behind from colliding.
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let dir =
            std::env::temp_dir().join(format!("shm-region-win-{}-{t}-{n}", std::process::id()));
        std::fs::create_dir(&dir).expect("create the scratch folder");
        Scratch(dir)
    }
    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A section name no other test or run uses.
fn unique_name(tag: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!(
        "Local\\shm-region-test-{}-{t}-{n}-{tag}",
        std::process::id()
    )
}

fn code(r: std::io::Result<impl Sized>) -> Option<i32> {
    r.err().and_then(|e| e.raw_os_error())
}

/// Creates a new file whose security descriptor is the SDDL string `sddl`.
fn create_with_sddl(path: &Path, sddl: &str) -> OwnedHandle {
    let w = wide(std::ffi::OsStr::new(sddl)).unwrap();
    let mut sd = ptr::null_mut();
    // SAFETY: W2/W3: `w` is NUL-terminated; `sd` is a live local the call
    // sets to a `LocalAlloc`ed descriptor.
    let ok = unsafe {
        ConvertStringSecurityDescriptorToSecurityDescriptorW(
            w.as_ptr(),
            SDDL_REVISION_1,
            &mut sd,
            ptr::null_mut(),
        )
    };
    assert_ne!(ok, 0, "SDDL {sddl}: {}", std::io::Error::last_os_error());
    // SAFETY: W4: `sd` is ours to free with `LocalFree`.
    let guard = unsafe { LocalBox::new(sd) };
    let sa = SECURITY_ATTRIBUTES {
        nLength: u32::try_from(std::mem::size_of::<SECURITY_ATTRIBUTES>()).unwrap(),
        lpSecurityDescriptor: sd,
        bInheritHandle: 0,
    };
    let name = wide(path.as_os_str()).unwrap();
    // SAFETY: W2/W3/W4: NUL-terminated name; `sa` points to the descriptor
    // `guard` keeps alive past the call.
    let h = unsafe {
        CreateFileW(
            name.as_ptr(),
            0xC001_0000 /* GENERIC_READ|GENERIC_WRITE|DELETE */ | 0x0002_0000,
            7,
            &sa,
            CREATE_NEW,
            FILE_ATTRIBUTE_NORMAL,
            ptr::null_mut(),
        )
    };
    // SAFETY: W1/W9: `h` is what `CreateFileW` just returned.
    let h = unsafe { owned(h) }.expect("create the file with the SDDL descriptor");
    drop(guard);
    h
}

/// Creates a pagefile-backed named section whose descriptor is `sddl`.
fn section_with_sddl(name: &str, sddl: &str) -> OwnedHandle {
    try_section_with_sddl(name, sddl).expect("create the section with the SDDL descriptor")
}

fn write_bytes(view: &View, offset: usize, bytes: &[u8]) {
    assert!(offset + bytes.len() <= view.len());
    for (i, b) in bytes.iter().enumerate() {
        let at = view.base().as_ptr().wrapping_add(offset + i);
        // SAFETY: test: `at` is inside the view's committed pages (the
        // callers commit first); a volatile byte store forms no reference.
        unsafe { at.write_volatile(*b) };
    }
}

fn read_bytes(view: &View, offset: usize, len: usize) -> Vec<u8> {
    assert!(offset + len <= view.len());
    (0..len)
        .map(|i| {
            let at = view.base().as_ptr().wrapping_add(offset + i).cast_const();
            // SAFETY: test: `at` is inside the view's committed pages; a
            // volatile byte load forms no reference.
            unsafe { at.read_volatile() }
        })
        .collect()
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| seed.wrapping_add(u8::try_from(i % 251).unwrap()))
        .collect()
}

/// The path of a test of this module as the test harness names it, for
/// `--exact` (the module path without the crate's name).
fn test_path(name: &str) -> String {
    let module = module_path!();
    let tail = module.split_once("::").map_or(module, |(_, t)| t);
    format!("{tail}::{name}")
}

/// Runs the `#[ignore]`d child test `name` in a new process of this test
/// binary with `env`, and returns its exit code.
fn run_child(name: &str, env: &[(&str, String)]) -> Option<i32> {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([
        "--ignored",
        "--exact",
        &test_path(name),
        "--test-threads=1",
        "--nocapture",
    ]);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("spawn the child test process");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("1 passed") || !out.status.success(),
        "the child ran no test: {text}"
    );
    if !out.status.success() {
        eprintln!(
            "child stdout:\n{text}\nchild stderr:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    out.status.code()
}

#[test]
fn the_system_reports_4k_pages_64k_granularity_and_at_least_one_cpu() {
    assert_eq!(page_size(), 4096);
    assert_eq!(allocation_granularity(), 65536);
    let n = cpu_count();
    assert!((1..=4096).contains(&n), "cpu_count {n}");
    assert!(current_user_sid_string().unwrap().starts_with("S-1-5-"));
}

#[test]
fn create_new_file_refuses_an_existing_name_with_error_80() {
    let dir = Scratch::new();
    let p = dir.path("f");
    let h = create_new_file(&p, true).unwrap();
    assert_eq!(code(create_new_file(&p, true)), Some(ERROR_FILE_EXISTS));
    assert_eq!(code(create_new_file(&p, false)), Some(ERROR_FILE_EXISTS));
    drop(h);
    // Still refused once no handle is open: the name exists.
    assert_eq!(code(create_new_file(&p, true)), Some(ERROR_FILE_EXISTS));
    assert_eq!(code(create_new_file(Path::new("a\0b"), true)), None);
}

#[test]
fn a_created_file_is_the_current_users_and_no_one_else_may_write_it() {
    let dir = Scratch::new();
    let p = dir.path("f");
    let h = create_new_file(&p, true).unwrap();
    assert!(owner_is_current_user(h.as_handle(), ObjectKind::File).unwrap());
    assert!(!others_may_write(h.as_handle(), ObjectKind::File).unwrap());
    // The same through a second handle opened by path.
    let h2 = open_existing_file(&p, false).unwrap();
    assert!(owner_is_current_user(h2.as_handle(), ObjectKind::File).unwrap());
    assert!(!others_may_write(h2.as_handle(), ObjectKind::File).unwrap());
    let fp = final_path(h.as_handle()).unwrap();
    assert!(fp.to_string_lossy().ends_with("\\f"), "{}", fp.display());
}

/// Whether this process runs under Wine (whose ntdll exports
/// `wine_get_version`), for the few assertions where Wine 8 and Windows
/// differ; each such assertion states both answers.
fn under_wine() -> bool {
    use windows_sys::Win32::System::LibraryLoader::{GetModuleHandleW, GetProcAddress};
    let ntdll = wide(std::ffi::OsStr::new("ntdll.dll")).unwrap();
    // SAFETY: W3: NUL-terminated name; ntdll is loaded in every process.
    let module = unsafe { GetModuleHandleW(ntdll.as_ptr()) };
    assert!(!module.is_null());
    // SAFETY: W3: a NUL-terminated ANSI name; the module handle is valid.
    unsafe { GetProcAddress(module, c"wine_get_version".as_ptr().cast()) }.is_some()
}

#[test]
fn others_may_write_reads_the_dacl_entry_by_entry() {
    let me = current_user_sid_string().unwrap();
    let file = |sddl: &str| sddl_lets_others_write(sddl, ObjectKind::File).unwrap();
    let section = |sddl: &str| sddl_lets_others_write(sddl, ObjectKind::Section).unwrap();
    // Everyone: full access; a NULL DACL; no DACL at all.
    assert!(file("D:(A;;FA;;;WD)"));
    // A NULL DACL. (SDDL's NO_ACCESS_CONTROL makes one on Windows; Wine 8
    // makes an empty DACL instead, which grants nothing.)
    // SAFETY: null owner and null DACL are allowed by the contract.
    let null_dacl =
        unsafe { dacl_lets_others_write(ptr::null_mut(), ptr::null(), ObjectKind::File) };
    assert!(null_dacl.unwrap());
    assert_eq!(file("D:NO_ACCESS_CONTROL"), !under_wine());
    assert!(file(&format!("O:{me}")));
    // Only the user, SYSTEM and Administrators: not others.
    let mine = format!("O:{me}D:P(A;;FA;;;{me})(A;;FA;;;SY)(A;;FA;;;BA)");
    assert!(!file(&mine));
    assert!(!file("D:P"));
    // Everyone may read and execute only.
    assert!(!file(&format!("{mine}(A;;FRFX;;;WD)")));
    // Each write right alone, granted to Users (BU), counts.
    for right in ["0x2", "0x4", "WD", "WO", "GW", "GA", "FW"] {
        assert!(file(&format!("{mine}(A;;{right};;;BU)")), "{right}");
    }
    // DELETE alone and FILE_WRITE_ATTRIBUTES alone do not change the bytes.
    assert!(!file(&format!("{mine}(A;;SD;;;BU)")));
    assert!(!file(&format!("{mine}(A;;0x100;;;BU)")));
    // An inherit-only grant does not apply to the object itself; an
    // inherited one (ID) does.
    assert!(!file(&format!("{mine}(A;OIIO;FA;;;WD)")));
    assert!(file(&format!("{mine}(A;ID;FA;;;WD)")));
    // A deny is ignored: it cannot make a grant safe in this reading.
    assert!(file(&format!("{mine}(D;;FA;;;WD)(A;;FA;;;WD)")));
    // OWNER RIGHTS is the owner: trusted when the owner is the user only.
    assert!(!file(&format!("{mine}(A;;FA;;;OW)")));
    assert!(file("O:SYD:P(A;;FA;;;SY)(A;;FA;;;OW)"));
    // Another user's SID.
    assert!(file(&format!("{mine}(A;;FA;;;S-1-5-21-1-2-3-1001)")));
    // Sections: SECTION_MAP_WRITE (0x2) and SECTION_EXTEND_SIZE (0x10)
    // write, SECTION_MAP_READ (0x4) does not (for files 0x4 is append).
    assert!(section(&format!("{mine}(A;;0x2;;;WD)")));
    assert!(section(&format!("{mine}(A;;0x10;;;WD)")));
    assert!(!section(&format!("{mine}(A;;0x4;;;WD)")));
    assert!(file(&format!("{mine}(A;;0x4;;;WD)")));
    // Malformed SDDL is an error, not an answer.
    assert!(sddl_lets_others_write("D:(nonsense", ObjectKind::File).is_err());
}

/// An ACL of one ACE of type `ace_type` with access `mask` for Everyone
/// (S-1-1-0), laid out by hand (SDDL cannot write every ACE kind, and
/// Wine 8's parser refuses object ACEs).
fn hand_made_acl(ace_type: u8, mask: u32) -> Vec<u64> {
    let mut b = vec![4u8, 0, 28, 0, 1, 0, 0, 0]; // revision 4, size 28, 1 ACE
    b.extend([ace_type, 0, 20, 0]); // ACE header: type, flags, size 20
    b.extend(mask.to_le_bytes());
    b.extend([1, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0]); // S-1-1-0
    let mut words = vec![0u64; 4];
    for (i, byte) in b.iter().enumerate() {
        words[i / 8] |= u64::from(*byte) << (8 * (i % 8));
    }
    words
}

#[test]
fn others_may_write_counts_allow_aces_it_cannot_parse_and_skips_those_that_grant_nothing() {
    let check = |ace_type: u8, mask: u32| {
        let acl = hand_made_acl(ace_type, mask);
        // SAFETY: a valid ACL of one ACE in `acl`, alive for the call; no
        // owner.
        unsafe { dacl_lets_others_write(ptr::null_mut(), acl.as_ptr().cast(), ObjectKind::File) }
            .unwrap()
    };
    // A plain allow ACE: Everyone may write data; may only read.
    assert!(check(0, 0x2));
    assert!(!check(0, 0x1));
    // Object (5), compound (4), callback-object (11) allow ACEs and an
    // unknown kind (22): not parsed, a write bit counts.
    for t in [4, 5, 11, 22] {
        assert!(check(t, 0x2), "type {t}");
        assert!(!check(t, 0x1), "type {t}");
    }
    // Deny (1), audit (2), alarm (3), mandatory label (17): grant nothing.
    for t in [1, 2, 3, 17] {
        assert!(!check(t, 0x2), "type {t}");
    }
}

#[test]
fn a_file_whose_dacl_grants_everyone_write_is_writable_by_others_on_windows() {
    let dir = Scratch::new();
    let everyone = create_with_sddl(&dir.path("everyone"), "D:(A;;FA;;;WD)");
    // Wine 8 keeps no DACL for files: it derives one from the Unix mode
    // bits (Everyone gets read and execute from 0644 or 0755, never write
    // under umask 022), so the grant is lost there. Windows stores it.
    assert_eq!(
        others_may_write(everyone.as_handle(), ObjectKind::File).unwrap(),
        !under_wine()
    );
    // A file made by the standard library: not writable by others either
    // way (Windows: the temporary folder's inherited DACL, the user,
    // SYSTEM and Administrators; Wine: Everyone may read).
    let plain = std::fs::File::create(dir.path("plain")).unwrap();
    assert!(!others_may_write(plain.as_handle(), ObjectKind::File).unwrap());
    assert!(owner_is_current_user(plain.as_handle(), ObjectKind::File).unwrap());
}

#[test]
fn open_existing_file_refuses_a_directory() {
    let dir = Scratch::new();
    let sub = dir.path("sub");
    std::fs::create_dir(&sub).unwrap();
    assert_eq!(
        code(open_existing_file(&sub, false)),
        Some(ERROR_ACCESS_DENIED)
    );
    assert_eq!(
        code(open_existing_file(&sub, true)),
        Some(ERROR_ACCESS_DENIED)
    );
    assert_eq!(
        code(open_existing_file(&dir.path("missing"), false)),
        Some(2)
    );
}

#[test]
fn file_facts_describe_a_plain_disk_file_and_name_it() {
    let dir = Scratch::new();
    let h = create_new_file(&dir.path("a"), true).unwrap();
    set_file_len(h.as_handle(), 10_000).unwrap();
    let f = file_facts(h.as_handle()).unwrap();
    assert_eq!(f.size, 10_000);
    assert!(!f.is_directory && !f.is_reparse_point && f.is_disk_file && !f.delete_pending);
    assert_eq!(f.links, 1);
    let again = open_existing_file(&dir.path("a"), false).unwrap();
    let g = file_facts(again.as_handle()).unwrap();
    assert_eq!(
        (g.volume_serial, g.file_index),
        (f.volume_serial, f.file_index)
    );
    let other = create_new_file(&dir.path("b"), true).unwrap();
    let o = file_facts(other.as_handle()).unwrap();
    assert_ne!(
        (o.volume_serial, o.file_index),
        (f.volume_serial, f.file_index)
    );
    // Reserving space does not change the length. Wine 8 does not
    // implement FileAllocationInfo: ERROR_CALL_NOT_IMPLEMENTED (120).
    let reserved = reserve_file(h.as_handle(), 1 << 20);
    if under_wine() {
        assert_eq!(code(reserved), Some(120));
    } else {
        reserved.unwrap();
    }
    assert_eq!(file_facts(h.as_handle()).unwrap().size, 10_000);
    set_file_len(h.as_handle(), 4096).unwrap();
    assert_eq!(file_facts(h.as_handle()).unwrap().size, 4096);
    assert_eq!(code(set_file_len(h.as_handle(), u64::MAX)), None);
}

#[test]
fn a_peer_cannot_cut_a_file_below_a_mapped_view_and_the_view_stays_readable() {
    let dir = Scratch::new();
    let p = dir.path("mapped");
    let len = 64 * 1024;
    let h = create_new_file(&p, true).unwrap();
    set_file_len(h.as_handle(), u64::try_from(len).unwrap()).unwrap();
    let section = create_section(Some(h.as_handle()), 0, true, None, false).unwrap();
    let view = map_view(section.as_handle(), len, true).unwrap();
    let bytes = pattern(len, 7);
    write_bytes(&view, 0, &bytes);
    let peer = open_existing_file(&p, true).unwrap();
    assert_eq!(
        code(set_file_len(peer.as_handle(), 4096)),
        Some(ERROR_USER_MAPPED_FILE)
    );
    assert_eq!(
        code(set_file_len(h.as_handle(), 0)),
        Some(ERROR_USER_MAPPED_FILE)
    );
    assert_eq!(
        file_facts(peer.as_handle()).unwrap().size,
        u64::try_from(len).unwrap()
    );
    assert_eq!(read_bytes(&view, 0, len), bytes);
    // Growing is allowed while mapped.
    set_file_len(peer.as_handle(), 2 * u64::try_from(len).unwrap()).unwrap();
    let before = crate::unmap_failures();
    drop(view);
    drop(section);
    assert_eq!(crate::unmap_failures(), before);
    // Unmapped: now it may be cut.
    set_file_len(peer.as_handle(), 4096).unwrap();
    assert_eq!(file_facts(h.as_handle()).unwrap().size, 4096);
}

#[test]
fn create_section_refuses_an_existing_name_with_error_183() {
    let name = unique_name("dup");
    let first = create_section(None, 65536, true, Some(&name), false).unwrap();
    assert_eq!(
        code(create_section(None, 65536, true, Some(&name), false)),
        Some(ERROR_ALREADY_EXISTS)
    );
    assert_eq!(
        code(create_section(None, 1 << 20, true, Some(&name), true)),
        Some(ERROR_ALREADY_EXISTS)
    );
    // The refused calls closed their handles: once ours closes, the name is free.
    drop(first);
    let again = create_section(None, 65536, true, Some(&name), false).unwrap();
    drop(again);
    // SEC_RESERVE is only for pagefile-backed sections.
    let dir = Scratch::new();
    let h = create_new_file(&dir.path("f"), true).unwrap();
    set_file_len(h.as_handle(), 4096).unwrap();
    let e = create_section(Some(h.as_handle()), 0, true, None, true).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
}

#[test]
fn a_named_section_is_the_current_users_and_its_dacl_is_read() {
    let name = unique_name("owner");
    let s = create_section(None, 65536, true, Some(&name), false).unwrap();
    let opened = open_section(&name, false).unwrap();
    for h in [s.as_handle(), opened.as_handle()] {
        assert!(owner_is_current_user(h, ObjectKind::Section).unwrap());
        assert!(!others_may_write(h, ObjectKind::Section).unwrap());
    }
    let open_to_all = unique_name("all");
    let all = section_with_sddl(&open_to_all, "D:(A;;GA;;;WD)");
    assert!(others_may_write(all.as_handle(), ObjectKind::Section).unwrap());
    let me = current_user_sid_string().unwrap();
    let read_only = unique_name("ro");
    // 0x4: SECTION_MAP_READ.
    let ro = section_with_sddl(&read_only, &format!("O:{me}D:P(A;;GA;;;{me})(A;;0x4;;;WD)"));
    assert!(!others_may_write(ro.as_handle(), ObjectKind::Section).unwrap());
    assert_eq!(code(open_section(&unique_name("missing"), false)), Some(2));
}

const CHILD_NAME: &str = "SHM_REGION_WIN_CHILD_SECTION";
const CHILD_EXPECT: &str = "SHM_REGION_WIN_CHILD_EXPECT";

#[test]
fn a_reserved_named_section_grows_by_commit_and_a_child_process_sees_it() {
    let name = unique_name("grow");
    let size = 1 << 20;
    let page = page_size();
    let s = create_section(None, u64::try_from(size).unwrap(), true, Some(&name), true).unwrap();
    let view = map_view(s.as_handle(), size, true).unwrap();
    assert_eq!(committed_prefix(&view), 0);
    commit(&view, 0, 1, true).unwrap();
    assert_eq!(committed_prefix(&view), page);
    write_bytes(&view, 0, &pattern(page, 1));
    let env = |n: usize| vec![(CHILD_NAME, name.clone()), (CHILD_EXPECT, n.to_string())];
    assert_eq!(
        run_child("child_sees_the_committed_prefix", &env(page)),
        Some(0)
    );
    // Commit pages 1..4 (the range is widened to whole pages).
    commit(&view, page + 10, 3 * page - 20, true).unwrap();
    assert_eq!(committed_prefix(&view), 4 * page);
    write_bytes(&view, page, &pattern(3 * page, 2));
    assert_eq!(
        run_child("child_sees_the_committed_prefix", &env(4 * page)),
        Some(0)
    );
    // A hole: committing page 6 does not extend the prefix past page 4.
    commit(&view, 6 * page, page, true).unwrap();
    assert_eq!(committed_prefix(&view), 4 * page);
    // A child told a wrong length fails: the check can fail.
    assert_eq!(
        run_child("child_sees_the_committed_prefix", &env(5 * page)),
        Some(101)
    );
    let e = commit(&view, size - 1, 2, true).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
    assert_eq!(
        map_view(s.as_handle(), 0, true).unwrap_err().kind(),
        std::io::ErrorKind::InvalidInput
    );
}

/// Run as a child by the test above: opens the section by name, checks its
/// owner, its committed prefix (exactly the expected bytes) and their
/// contents.
#[test]
#[ignore = "a child process of a_reserved_named_section_grows_by_commit_and_a_child_process_sees_it"]
fn child_sees_the_committed_prefix() {
    let name = std::env::var(CHILD_NAME).expect("run by the parent test");
    let expect: usize = std::env::var(CHILD_EXPECT).unwrap().parse().unwrap();
    let page = page_size();
    let s = open_section(&name, false).unwrap();
    assert!(owner_is_current_user(s.as_handle(), ObjectKind::Section).unwrap());
    let view = map_view(s.as_handle(), 1 << 20, false).unwrap();
    assert_eq!(committed_prefix(&view), expect);
    assert_eq!(read_bytes(&view, 0, page), pattern(page, 1));
    if expect > page {
        assert_eq!(
            read_bytes(&view, page, expect - page),
            pattern(expect - page, 2)
        );
    }
}

#[test]
fn delete_by_handle_removes_the_name_when_the_handle_closes() {
    let dir = Scratch::new();
    let p = dir.path("gone");
    let h = create_new_file(&p, true).unwrap();
    delete_by_handle(h.as_handle()).unwrap();
    // Windows reports the pending deletion; Wine 8's FileStandardInfo
    // always says false.
    assert_eq!(
        file_facts(h.as_handle()).unwrap().delete_pending,
        !under_wine()
    );
    drop(h);
    assert_eq!(
        std::fs::metadata(&p).unwrap_err().kind(),
        std::io::ErrorKind::NotFound
    );
    // The name is free again.
    drop(create_new_file(&p, true).unwrap());
    assert!(std::fs::metadata(&p).is_ok());
}

#[test]
fn private_memory_is_zeroed_writable_and_released() {
    let len = 3 * page_size() + 1;
    let base = alloc_private(len).unwrap();
    for i in (0..len).step_by(1021) {
        let at = base.as_ptr().wrapping_add(i);
        // SAFETY: test: inside the allocation, committed read-write.
        assert_eq!(unsafe { at.read_volatile() }, 0);
        // SAFETY: as above.
        unsafe { at.write_volatile(0xAB) };
    }
    // SAFETY: test: `base` came from `alloc_private`, nothing uses it after.
    assert!(unsafe { free_private(base) });
    assert_eq!(
        alloc_private(0).unwrap_err().kind(),
        std::io::ErrorKind::InvalidInput
    );
}

/// A folder holding `dangling`, a symbolic link to the missing `missing`,
/// `real`, a folder, and `dirlink`, a symbolic link to `real`. Under Wine
/// they are Unix symbolic links that verify/wine/setup.sh made in
/// `C:\shm-region-fixtures` (Wine 8's `CreateSymbolicLinkW` reports
/// success and creates nothing); on Windows this test makes them, which
/// needs the right to create symbolic links (developer mode or
/// `SeCreateSymbolicLinkPrivilege`).
fn link_fixtures() -> (Option<Scratch>, PathBuf) {
    if under_wine() {
        let dir = PathBuf::from("C:\\shm-region-fixtures");
        assert!(
            std::fs::metadata(dir.join("real")).is_ok(),
            "no link fixtures in {}: run verify/wine/setup.sh",
            dir.display()
        );
        return (None, dir);
    }
    let s = Scratch::new();
    std::os::windows::fs::symlink_file(s.path("missing"), s.path("dangling"))
        .expect("create a symbolic link (needs developer mode or SeCreateSymbolicLinkPrivilege)");
    std::fs::create_dir(s.path("real")).unwrap();
    std::os::windows::fs::symlink_dir(s.path("real"), s.path("dirlink")).unwrap();
    let dir = s.0.clone();
    (Some(s), dir)
}

#[test]
fn create_new_file_refuses_a_symbolic_link_at_the_name_even_a_dangling_one() {
    let (_keep, dir) = link_fixtures();
    assert_eq!(
        code(create_new_file(&dir.join("dangling"), true)),
        Some(ERROR_FILE_EXISTS)
    );
    // The link's target was not created through it.
    assert_eq!(
        std::fs::metadata(dir.join("missing")).unwrap_err().kind(),
        std::io::ErrorKind::NotFound
    );
    assert_eq!(
        code(create_new_file(&dir.join("dirlink"), true)),
        Some(ERROR_FILE_EXISTS)
    );
}

#[test]
fn a_link_in_a_parent_folder_is_followed_and_final_path_shows_where_the_file_is() {
    let (_keep, dir) = link_fixtures();
    let name = format!("f-{}", unique_name("parent").rsplit('\\').next().unwrap());
    let h = create_new_file(&dir.join("dirlink").join(&name), true).unwrap();
    let fp = final_path(h.as_handle()).unwrap();
    let expect = format!("\\real\\{name}");
    assert!(
        fp.to_string_lossy().ends_with(&expect),
        "{} does not end with {expect}",
        fp.display()
    );
    delete_by_handle(h.as_handle()).unwrap();
    drop(h);
    assert!(std::fs::metadata(dir.join("real").join(&name)).is_err());
}

#[test]
fn a_section_owned_by_another_is_not_the_current_users() {
    // A descriptor naming SYSTEM as owner: Windows refuses to give a
    // non-privileged process's object another owner (ERROR_INVALID_OWNER,
    // 1307); Wine 8 accepts it, and the owner check then says "not ours".
    let name = unique_name("owner-sy");
    let w = wide(std::ffi::OsStr::new("O:SYD:(A;;GA;;;WD)")).unwrap();
    let mut sd = ptr::null_mut();
    // SAFETY: W2/W3: NUL-terminated SDDL; `sd` a live local.
    let ok = unsafe {
        ConvertStringSecurityDescriptorToSecurityDescriptorW(
            w.as_ptr(),
            SDDL_REVISION_1,
            &mut sd,
            ptr::null_mut(),
        )
    };
    assert_ne!(ok, 0);
    // SAFETY: W4: `sd` is ours to free with `LocalFree`.
    let guard = unsafe { LocalBox::new(sd) };
    let sa = SECURITY_ATTRIBUTES {
        nLength: u32::try_from(std::mem::size_of::<SECURITY_ATTRIBUTES>()).unwrap(),
        lpSecurityDescriptor: sd,
        bInheritHandle: 0,
    };
    let wname = wide(std::ffi::OsStr::new(&name)).unwrap();
    // SAFETY: W2/W3/W4: pagefile-backed; NUL-terminated name; `sa` points
    // to the descriptor `guard` keeps alive past the call.
    let h = unsafe {
        CreateFileMappingW(
            windows_sys::Win32::Foundation::INVALID_HANDLE_VALUE,
            &sa,
            PAGE_READWRITE,
            0,
            65536,
            wname.as_ptr(),
        )
    };
    // SAFETY: W1/W9: `h` is what `CreateFileMappingW` just returned.
    let r = unsafe { owned(h) };
    drop(guard);
    match r {
        Ok(s) => {
            assert!(under_wine(), "Windows gave the section another owner");
            assert!(!owner_is_current_user(s.as_handle(), ObjectKind::Section).unwrap());
            assert!(others_may_write(s.as_handle(), ObjectKind::Section).unwrap());
            let opened = open_section(&name, false).unwrap();
            assert!(!owner_is_current_user(opened.as_handle(), ObjectKind::Section).unwrap());
        }
        Err(e) => assert_eq!((under_wine(), e.raw_os_error()), (false, Some(1307))),
    }
}

const CHILD_FILE: &str = "SHM_REGION_WIN_CHILD_FILE";

#[test]
fn a_peer_process_cannot_cut_a_mapped_file_and_the_view_stays_readable() {
    let dir = Scratch::new();
    let p = dir.path("mapped-by-parent");
    let len = 256 * 1024;
    let h = create_new_file(&p, true).unwrap();
    set_file_len(h.as_handle(), u64::try_from(len).unwrap()).unwrap();
    let section = create_section(Some(h.as_handle()), 0, true, None, false).unwrap();
    let view = map_view(section.as_handle(), len, true).unwrap();
    // A file-backed view is committed whole.
    assert_eq!(committed_prefix(&view), len);
    let bytes = pattern(len, 9);
    write_bytes(&view, 0, &bytes);
    flush(&view, 0, len, Some(h.as_handle())).unwrap();
    assert_eq!(
        flush(&view, 1, len, None).unwrap_err().kind(),
        std::io::ErrorKind::InvalidInput
    );
    let env = vec![(CHILD_FILE, p.to_string_lossy().into_owned())];
    assert_eq!(run_child("child_tries_to_cut_the_file", &env), Some(0));
    assert_eq!(
        file_facts(h.as_handle()).unwrap().size,
        u64::try_from(len).unwrap()
    );
    assert_eq!(read_bytes(&view, 0, len), bytes);
}

/// Run as a child by the test above: opens the file by path for writing
/// and tries to cut it to one page, then to nothing; both must fail with
/// `ERROR_USER_MAPPED_FILE`, and the file must keep its length.
#[test]
#[ignore = "a child process of a_peer_process_cannot_cut_a_mapped_file_and_the_view_stays_readable"]
fn child_tries_to_cut_the_file() {
    let p = PathBuf::from(std::env::var(CHILD_FILE).expect("run by the parent test"));
    let h = open_existing_file(&p, true).unwrap();
    let before = file_facts(h.as_handle()).unwrap().size;
    assert_eq!(
        code(set_file_len(h.as_handle(), 4096)),
        Some(ERROR_USER_MAPPED_FILE)
    );
    assert_eq!(
        code(set_file_len(h.as_handle(), 0)),
        Some(ERROR_USER_MAPPED_FILE)
    );
    assert_eq!(file_facts(h.as_handle()).unwrap().size, before);
}

#[test]
fn sections_refuse_views_past_their_end_writes_to_read_only_ones_and_size_zero() {
    let s = create_section(None, 65536, true, None, false).unwrap();
    assert_eq!(
        code(map_view(s.as_handle(), 65537, true)),
        Some(ERROR_ACCESS_DENIED)
    );
    let whole = map_view(s.as_handle(), 65536, true).unwrap();
    assert_eq!(committed_prefix(&whole), 65536);
    let ro = create_section(None, 65536, false, None, false).unwrap();
    assert_eq!(
        code(map_view(ro.as_handle(), 4096, true)),
        Some(ERROR_ACCESS_DENIED)
    );
    drop(map_view(ro.as_handle(), 4096, false).unwrap());
    // ERROR_INVALID_PARAMETER: a pagefile-backed section needs a size.
    assert_eq!(code(create_section(None, 0, true, None, false)), Some(87));
    // ERROR_FILE_NOT_FOUND: no such name.
    assert_eq!(code(open_section(&unique_name("none"), true)), Some(2));
}

/// As [`section_with_sddl`], with the error of `CreateFileMappingW` (for
/// descriptors Windows may refuse, such as another owner).
fn try_section_with_sddl(name: &str, sddl: &str) -> std::io::Result<OwnedHandle> {
    let w = wide(std::ffi::OsStr::new(sddl)).unwrap();
    let mut sd = ptr::null_mut();
    // SAFETY: as in `create_with_sddl`.
    let ok = unsafe {
        ConvertStringSecurityDescriptorToSecurityDescriptorW(
            w.as_ptr(),
            SDDL_REVISION_1,
            &mut sd,
            ptr::null_mut(),
        )
    };
    assert_ne!(ok, 0, "SDDL {sddl}: {}", std::io::Error::last_os_error());
    // SAFETY: W4: `sd` is ours to free with `LocalFree`.
    let guard = unsafe { LocalBox::new(sd) };
    let sa = SECURITY_ATTRIBUTES {
        nLength: u32::try_from(std::mem::size_of::<SECURITY_ATTRIBUTES>()).unwrap(),
        lpSecurityDescriptor: sd,
        bInheritHandle: 0,
    };
    let wname = wide(std::ffi::OsStr::new(name)).unwrap();
    // SAFETY: W2/W3/W4: pagefile-backed; NUL-terminated name; `sa` points
    // to the descriptor `guard` keeps alive past the call.
    let h = unsafe {
        CreateFileMappingW(
            windows_sys::Win32::Foundation::INVALID_HANDLE_VALUE,
            &sa,
            PAGE_READWRITE,
            0,
            65536,
            wname.as_ptr(),
        )
    };
    // SAFETY: W1/W9: `h` is what `CreateFileMappingW` just returned.
    let h = unsafe { owned(h) };
    drop(guard);
    h
}

#[test]
fn attach_shm_refuses_a_section_another_user_owns_unless_allow_other_owner() {
    // Owner SYSTEM, a DACL of the user and SYSTEM alone: only the owner
    // check can refuse it. Windows refuses to give a non-privileged
    // process's object another owner (ERROR_INVALID_OWNER, 1307); Wine 8
    // accepts it.
    let name = unique_name("foreign-owner");
    let me = current_user_sid_string().unwrap();
    let made = try_section_with_sddl(&name, &format!("O:SYD:P(A;;GA;;;{me})(A;;GA;;;SY)"));
    let section = match made {
        Ok(s) => s,
        Err(e) => {
            assert_eq!((under_wine(), e.raw_os_error()), (false, Some(1307)));
            return;
        }
    };
    assert!(under_wine(), "Windows gave the section another owner");
    assert!(!others_may_write(section.as_handle(), ObjectKind::Section).unwrap());
    let bare = name.strip_prefix("Local\\").unwrap();
    for read_only in [false, true] {
        let o = crate::MmapOptions::new();
        let r = if read_only {
            o.attach_shm_read_only(bare)
        } else {
            o.attach_shm(bare)
        };
        let err = r.unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::UntrustedOwner, "{err}");
        assert!(
            err.to_string().contains("MmapOptions::allow_other_owner"),
            "{err}"
        );
    }
    let allowed = crate::MmapOptions::new()
        .allow_other_owner(true)
        .attach_shm(bare)
        .unwrap();
    // A section made without SEC_RESERVE is committed whole: 64 KiB.
    assert_eq!(allowed.len(), 65536);
}

#[test]
fn a_view_the_system_refuses_to_unmap_is_counted_in_unmap_failures() {
    let page = page_size();
    let base = alloc_private(page).unwrap();
    let before = crate::unmap_failures();
    // SAFETY: test of the failure path of `View`'s drop. `[base, base +
    // page)` is a private allocation this test owns, not a view:
    // `UnmapViewOfFile` of it fails (STATUS_NOT_MAPPED_VIEW) and leaves it
    // allocated, as checked below; nothing else refers to it, and it is
    // freed once, after.
    drop(unsafe { View::from_raw(base, page) });
    assert_eq!(crate::unmap_failures(), before + 1);
    // SAFETY: test: still our committed allocation (the unmap failed).
    unsafe { base.as_ptr().write_volatile(7) };
    // SAFETY: as above.
    assert_eq!(unsafe { base.as_ptr().read_volatile() }, 7);
    // SAFETY: test: `base` came from `alloc_private`, nothing uses it after.
    assert!(unsafe { free_private(base) });
}

#[test]
fn a_created_section_has_a_protected_dacl_of_the_user_and_system_alone() {
    use std::os::windows::io::AsRawHandle;
    use windows_sys::Win32::Security::Authorization::{GetSecurityInfo, SE_KERNEL_OBJECT};
    use windows_sys::Win32::Security::{
        GetSecurityDescriptorControl, ACL, DACL_SECURITY_INFORMATION, SE_DACL_PROTECTED,
    };
    let name = unique_name("protected");
    let s = create_section(None, 65536, true, Some(&name), false).unwrap();
    let mut dacl: *mut ACL = ptr::null_mut();
    let mut sd = ptr::null_mut();
    // SAFETY: W1/W2: the handle is open; the out-pointers are live locals;
    // only the DACL is asked for.
    let err = unsafe {
        GetSecurityInfo(
            s.as_raw_handle(),
            SE_KERNEL_OBJECT,
            DACL_SECURITY_INFORMATION,
            ptr::null_mut(),
            ptr::null_mut(),
            &mut dacl,
            ptr::null_mut(),
            &mut sd,
        )
    };
    assert_eq!(err, 0);
    // SAFETY: W4: `sd` was `LocalAlloc`ed for us by `GetSecurityInfo`.
    let _guard = unsafe { LocalBox::new(sd) };
    let (mut control, mut revision) = (0u16, 0u32);
    // SAFETY: W2/W4: `sd` is the live descriptor; live out-pointers.
    let ok = unsafe { GetSecurityDescriptorControl(sd, &mut control, &mut revision) };
    assert_ne!(ok, 0);
    assert_ne!(control & SE_DACL_PROTECTED, 0, "control {control:#x}");
    assert!(!dacl.is_null());
    // SAFETY: W4: `dacl` points into the descriptor `_guard` keeps alive.
    let header = unsafe { dacl.read_unaligned() };
    assert_eq!(header.AceCount, 2, "the user and SYSTEM");
}
