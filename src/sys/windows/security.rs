//! SIDs, the owner-only security descriptor given to what this crate
//! creates, and the owner and DACL checks of what it attaches to
//! (invariants W2, W4, W5, W6).

use std::io;
use std::mem::size_of;
use std::os::windows::io::{AsRawHandle, BorrowedHandle, FromRawHandle, OwnedHandle};
use std::ptr;

use windows_sys::Win32::Foundation::{ERROR_INSUFFICIENT_BUFFER, GENERIC_ALL, GENERIC_WRITE};
use windows_sys::Win32::Security::Authorization::{
    ConvertSidToStringSidW, GetSecurityInfo, SE_FILE_OBJECT, SE_KERNEL_OBJECT, SE_OBJECT_TYPE,
};
use windows_sys::Win32::Security::{
    AddAccessAllowedAce, CopySid, CreateWellKnownSid, EqualSid, GetAce, GetLengthSid,
    GetTokenInformation, InitializeAcl, InitializeSecurityDescriptor, IsValidSid,
    SetSecurityDescriptorControl, SetSecurityDescriptorDacl, SetSecurityDescriptorOwner, TokenOwner,
    TokenUser, TOKEN_INFORMATION_CLASS, TOKEN_OWNER,
    WinBuiltinAdministratorsSid, WinCreatorOwnerRightsSid, WinLocalSystemSid, ACCESS_ALLOWED_ACE,
    ACE_HEADER, ACL, ACL_REVISION, DACL_SECURITY_INFORMATION, INHERIT_ONLY_ACE,
    OWNER_SECURITY_INFORMATION, PSID, SECURITY_ATTRIBUTES, SECURITY_DESCRIPTOR,
    SECURITY_MAX_SID_SIZE, SE_DACL_PROTECTED, TOKEN_QUERY, TOKEN_USER, WELL_KNOWN_SID_TYPE,
};
use windows_sys::Win32::Storage::FileSystem::{
    FILE_ALL_ACCESS, FILE_APPEND_DATA, FILE_WRITE_DATA, WRITE_DAC, WRITE_OWNER,
};
use windows_sys::Win32::System::Memory::{
    SECTION_ALL_ACCESS, SECTION_EXTEND_SIZE, SECTION_MAP_WRITE,
};
use windows_sys::Win32::System::SystemServices::{
    ACCESS_ALLOWED_ACE_TYPE, ACCESS_ALLOWED_CALLBACK_ACE_TYPE, ACCESS_DENIED_ACE_TYPE,
    ACCESS_DENIED_CALLBACK_ACE_TYPE, ACCESS_DENIED_CALLBACK_OBJECT_ACE_TYPE,
    ACCESS_DENIED_OBJECT_ACE_TYPE, SECURITY_DESCRIPTOR_REVISION, SYSTEM_ACCESS_FILTER_ACE_TYPE,
    SYSTEM_ALARM_ACE_TYPE, SYSTEM_ALARM_OBJECT_ACE_TYPE, SYSTEM_AUDIT_ACE_TYPE,
    SYSTEM_AUDIT_CALLBACK_ACE_TYPE, SYSTEM_AUDIT_OBJECT_ACE_TYPE,
};
use windows_sys::Win32::System::Threading::{GetCurrentProcess, OpenProcessToken};

use super::handle::{check, LocalBox};

/// What kind of object a handle is, for `GetSecurityInfo` and for which
/// access bits let another write it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ObjectKind {
    /// A file (`SE_FILE_OBJECT`).
    File,
    /// A section, that is a file mapping object (`SE_KERNEL_OBJECT`).
    Section,
}

impl ObjectKind {
    fn se_type(self) -> SE_OBJECT_TYPE {
        match self {
            ObjectKind::File => SE_FILE_OBJECT,
            ObjectKind::Section => SE_KERNEL_OBJECT,
        }
    }

    /// Everything the creating user is granted.
    fn all_access(self) -> u32 {
        match self {
            ObjectKind::File => FILE_ALL_ACCESS,
            ObjectKind::Section => SECTION_ALL_ACCESS,
        }
    }

    /// The access bits with which a holder could change the object's bytes
    /// or its length, or give itself that right.
    ///
    /// Files: `FILE_WRITE_DATA`, `FILE_APPEND_DATA`. Sections:
    /// `SECTION_MAP_WRITE`, `SECTION_EXTEND_SIZE`. Both: `WRITE_DAC`,
    /// `WRITE_OWNER` (rewrite the DACL, take ownership), `GENERIC_WRITE`,
    /// `GENERIC_ALL` (not mapped yet, as in an ACE set by a raw call).
    /// `DELETE` is not among them: it lets a holder remove or rename the
    /// name, not change the bytes a mapping shows.
    fn write_mask(self) -> u32 {
        let own = match self {
            ObjectKind::File => FILE_WRITE_DATA | FILE_APPEND_DATA,
            ObjectKind::Section => SECTION_MAP_WRITE | SECTION_EXTEND_SIZE,
        };
        own | WRITE_DAC | WRITE_OWNER | GENERIC_WRITE | GENERIC_ALL
    }
}

/// A SID in a buffer of its own (`SECURITY_MAX_SID_SIZE` bytes, 8-byte
/// aligned: invariant W2).
pub struct Sid {
    buf: Box<[u64]>,
}

/// Words of a `Sid`'s buffer: `SECURITY_MAX_SID_SIZE` (68) bytes rounded up.
const SID_WORDS: usize = 9;
const _: () = assert!(SID_WORDS * 8 >= SECURITY_MAX_SID_SIZE as usize);

impl Sid {
    fn zeroed() -> Self {
        Sid {
            buf: vec![0u64; SID_WORDS].into_boxed_slice(),
        }
    }

    /// The SID as the `PSID` the API takes. The API functions this module
    /// passes it to (`EqualSid`, `GetLengthSid`, `AddAccessAllowedAce`, ...)
    /// only read through it, despite the `*mut` type.
    pub fn as_psid(&self) -> PSID {
        self.buf.as_ptr().cast_mut().cast()
    }

    /// The buffer's length in bytes.
    fn capacity() -> u32 {
        // 72: cannot truncate.
        SECURITY_MAX_SID_SIZE.next_multiple_of(8)
    }

    /// A copy of the SID at `src`.
    ///
    /// # Safety
    ///
    /// `src` points to a valid SID, readable for the call.
    unsafe fn copy_of(src: PSID) -> io::Result<Self> {
        let mut sid = Sid::zeroed();
        let dst: PSID = sid.buf.as_mut_ptr().cast();
        // SAFETY: W2: `dst` is `capacity()` bytes of our buffer, 8-byte
        // aligned; `src` is a valid SID (this function's contract).
        // `CopySid` fails, writing nothing past the length given, if the
        // SID is larger.
        check(unsafe { CopySid(Self::capacity(), dst, src) })?;
        Ok(sid)
    }

    /// A well-known SID without a domain part (SYSTEM, Administrators, ...).
    fn well_known(kind: WELL_KNOWN_SID_TYPE) -> io::Result<Self> {
        let mut sid = Sid::zeroed();
        let mut size = Self::capacity();
        let dst: PSID = sid.buf.as_mut_ptr().cast();
        // SAFETY: W2: `dst` is `size` bytes of our buffer, 8-byte aligned,
        // `size` a live local; a null domain SID is allowed for the types
        // passed here (none needs a domain).
        check(unsafe { CreateWellKnownSid(kind, ptr::null_mut(), dst, &mut size) })?;
        Ok(sid)
    }

    /// Whether the SID at `other` equals this one.
    ///
    /// # Safety
    ///
    /// `other` points to a valid SID, readable for the call.
    unsafe fn equals(&self, other: PSID) -> bool {
        // SAFETY: both are valid SIDs: ours by construction (W2), `other`
        // by this function's contract. `EqualSid` only reads them.
        unsafe { EqualSid(self.as_psid(), other) != 0 }
    }

    /// The SID's length in bytes.
    fn len(&self) -> u32 {
        // SAFETY: W2: our SID is valid (made by `CopySid` or
        // `CreateWellKnownSid`); `GetLengthSid` only reads it.
        unsafe { GetLengthSid(self.as_psid()) }
    }

    #[cfg_attr(
        not(test),
        allow(dead_code, reason = "used by the tests of `sys::windows`")
    )]
    /// The SID as a string, `S-1-5-...`.
    ///
    /// # Errors
    ///
    /// The error of `ConvertSidToStringSidW`.
    pub fn to_string_sid(&self) -> io::Result<String> {
        let mut out: *mut u16 = ptr::null_mut();
        // SAFETY: W2: our SID is valid; `out` is a live local the call
        // sets to a `LocalAlloc`ed string on success.
        check(unsafe { ConvertSidToStringSidW(self.as_psid(), &mut out) })?;
        // SAFETY: W4: `out` was allocated by `ConvertSidToStringSidW` for
        // us to free with `LocalFree`, and only this guard frees it.
        let guard = unsafe { LocalBox::new(out.cast()) };
        let mut units = Vec::new();
        loop {
            let at = out.wrapping_add(units.len());
            // SAFETY: W4: the string is NUL-terminated and alive while
            // `guard` is; the loop stops at its NUL, so `at` never passes it.
            let unit = unsafe { at.read() };
            if unit == 0 {
                break;
            }
            units.push(unit);
        }
        let s = String::from_utf16_lossy(&units);
        drop(guard);
        Ok(s)
    }
}

/// The user SID of this process's token (the user it runs as).
///
/// # Errors
///
/// The errors of `OpenProcessToken` and `GetTokenInformation`.
pub fn current_user_sid() -> io::Result<Sid> {
    token_sid(TokenUser)
}

/// The SID this process's token makes the owner of the objects it creates
/// without naming one (`TokenOwner`): the user, or `BUILTIN\Administrators`
/// for an elevated administrator (and under Wine).
///
/// # Errors
///
/// As [`current_user_sid`].
pub fn default_owner_sid() -> io::Result<Sid> {
    token_sid(TokenOwner)
}

/// The SID that `class` (`TokenUser` or `TokenOwner`, whose structures
/// both start with the SID pointer) names in this process's token.
fn token_sid(class: TOKEN_INFORMATION_CLASS) -> io::Result<Sid> {
    let mut raw = ptr::null_mut();
    // SAFETY: `GetCurrentProcess` returns a pseudo handle that needs no
    // closing and takes no arguments.
    let process = unsafe { GetCurrentProcess() };
    // SAFETY: W2: `raw` is a live local the call sets on success; the
    // process pseudo handle is always valid.
    check(unsafe { OpenProcessToken(process, TOKEN_QUERY, &mut raw) })?;
    // SAFETY: W1: `raw` is the fresh token handle `OpenProcessToken` just
    // returned, owned by nothing else.
    let token = unsafe { OwnedHandle::from_raw_handle(raw) };
    let mut needed = 0u32;
    // SAFETY: W2: a null buffer of length 0 asks for the size, written to
    // the live local `needed`; the token handle lives for the call (W1).
    let ok = unsafe {
        GetTokenInformation(
            token.as_raw_handle(),
            class,
            ptr::null_mut(),
            0,
            &mut needed,
        )
    };
    if ok == 0 {
        let e = io::Error::last_os_error();
        if e.raw_os_error() != i32::try_from(ERROR_INSUFFICIENT_BUFFER).ok() {
            return Err(e);
        }
    }
    let bytes = usize::try_from(needed)
        .map_err(io::Error::other)?
        .max(size_of::<TOKEN_USER>().max(size_of::<TOKEN_OWNER>()));
    let mut buf = vec![0u64; bytes.div_ceil(8)];
    let len = u32::try_from(buf.len() * 8).map_err(io::Error::other)?;
    // SAFETY: W2: `buf` is `len` bytes, 8-byte aligned (as `TOKEN_USER`
    // needs); `needed` is a live local; the token lives (W1).
    check(unsafe {
        GetTokenInformation(
            token.as_raw_handle(),
            class,
            buf.as_mut_ptr().cast(),
            len,
            &mut needed,
        )
    })?;
    // SAFETY: W2: the call filled `buf`, aligned and large enough, with a
    // `TOKEN_USER` or a `TOKEN_OWNER` (by `class`) followed by the SID it
    // points to.
    let sid = if class == TokenOwner {
        // SAFETY: as above, a `TOKEN_OWNER`.
        unsafe { buf.as_ptr().cast::<TOKEN_OWNER>().read() }.Owner
    } else {
        // SAFETY: as above, a `TOKEN_USER`.
        unsafe { buf.as_ptr().cast::<TOKEN_USER>().read() }.User.Sid
    };
    // SAFETY: `sid` points into `buf`, alive here, to the valid SID the
    // call wrote.
    unsafe { Sid::copy_of(sid) }
}

#[cfg_attr(
    not(test),
    allow(dead_code, reason = "used by the tests of `sys::windows`")
)]
/// The current user's SID as a string (`S-1-5-21-...`), for messages.
///
/// # Errors
///
/// As [`current_user_sid`] and [`Sid::to_string_sid`].
pub fn current_user_sid_string() -> io::Result<String> {
    current_user_sid()?.to_string_sid()
}

/// An absolute security descriptor that gives the current user all access
/// and SYSTEM all access, nobody else, with a protected DACL (no ACE is
/// inherited from the parent folder) and the current user as owner
/// (invariant W5).
///
/// The owner is set explicitly: in an elevated administrator's token the
/// default owner is `BUILTIN\Administrators`, and `owner_is_current_user`
/// compares with the token's user.
pub struct OwnerOnly {
    sd: Box<SECURITY_DESCRIPTOR>,
    // The descriptor points into these: they live as long as it does (W5).
    _acl: Box<[u64]>,
    _user: Sid,
    _system: Sid,
}

impl OwnerOnly {
    /// The descriptor for an object of `kind`.
    ///
    /// # Errors
    ///
    /// The errors of the calls that build it.
    pub fn new(kind: ObjectKind) -> io::Result<Self> {
        let user = current_user_sid()?;
        let system = Sid::well_known(WinLocalSystemSid)?;
        let ace_fixed = size_of::<ACCESS_ALLOWED_ACE>() - size_of::<u32>();
        let acl_bytes = size_of::<ACL>()
            + 2 * ace_fixed
            + usize::try_from(user.len()).map_err(io::Error::other)?
            + usize::try_from(system.len()).map_err(io::Error::other)?;
        let mut acl = vec![0u64; acl_bytes.div_ceil(8)].into_boxed_slice();
        let acl_len = u32::try_from(acl.len() * 8).map_err(io::Error::other)?;
        let acl_ptr: *mut ACL = acl.as_mut_ptr().cast();
        // SAFETY: W2/W5: `acl_ptr` is `acl_len` bytes of our heap buffer,
        // 8-byte aligned (an ACL needs 4).
        check(unsafe { InitializeAcl(acl_ptr, acl_len, ACL_REVISION) })?;
        for sid in [&user, &system] {
            // SAFETY: W2/W5: the ACL was initialised with room for both
            // ACEs (sized from the SIDs' lengths above); the SID is valid.
            check(unsafe {
                AddAccessAllowedAce(acl_ptr, ACL_REVISION, kind.all_access(), sid.as_psid())
            })?;
        }
        // SAFETY: an all-zero `SECURITY_DESCRIPTOR` is a valid bit pattern
        // (integers and null pointers); `InitializeSecurityDescriptor`
        // sets it up next.
        let mut sd: Box<SECURITY_DESCRIPTOR> = Box::new(unsafe { std::mem::zeroed() });
        let psd: *mut SECURITY_DESCRIPTOR = &mut *sd;
        // SAFETY: W5: `psd` is our heap `SECURITY_DESCRIPTOR`, the size the
        // call initialises.
        check(unsafe { InitializeSecurityDescriptor(psd.cast(), SECURITY_DESCRIPTOR_REVISION) })?;
        // SAFETY: W5: the descriptor keeps a pointer to the ACL, which lives
        // in `_acl` as long as the descriptor does.
        check(unsafe { SetSecurityDescriptorDacl(psd.cast(), 1, acl_ptr, 0) })?;
        // SAFETY: W5: as above, the owner SID lives in `_user`.
        check(unsafe { SetSecurityDescriptorOwner(psd.cast(), user.as_psid(), 0) })?;
        // SAFETY: W5: sets a control bit of our initialised descriptor.
        check(unsafe {
            SetSecurityDescriptorControl(psd.cast(), SE_DACL_PROTECTED, SE_DACL_PROTECTED)
        })?;
        Ok(OwnerOnly {
            sd,
            _acl: acl,
            _user: user,
            _system: system,
        })
    }

    /// `SECURITY_ATTRIBUTES` pointing at the descriptor (not inheritable),
    /// valid while `self` lives.
    pub fn attributes(&self) -> SECURITY_ATTRIBUTES {
        let psd: *const SECURITY_DESCRIPTOR = &*self.sd;
        SECURITY_ATTRIBUTES {
            nLength: u32::try_from(size_of::<SECURITY_ATTRIBUTES>()).unwrap_or(u32::MAX),
            lpSecurityDescriptor: psd.cast_mut().cast(),
            bInheritHandle: 0,
        }
    }
}

/// The owner and DACL of an object, in a descriptor the system allocated
/// (invariant W4): `owner` and `dacl` point into it.
struct ObjectSecurity {
    _sd: LocalBox,
    owner: PSID,
    dacl: *const ACL,
}

fn query(h: BorrowedHandle<'_>, kind: ObjectKind) -> io::Result<ObjectSecurity> {
    let mut owner: PSID = ptr::null_mut();
    let mut dacl: *mut ACL = ptr::null_mut();
    let mut sd = ptr::null_mut();
    // SAFETY: W1/W2: the handle is borrowed, so open for the call; the
    // out-pointers are live locals; the group and SACL are not asked for.
    let err = unsafe {
        GetSecurityInfo(
            h.as_raw_handle(),
            kind.se_type(),
            OWNER_SECURITY_INFORMATION | DACL_SECURITY_INFORMATION,
            &mut owner,
            ptr::null_mut(),
            &mut dacl,
            ptr::null_mut(),
            &mut sd,
        )
    };
    if err != 0 {
        return Err(io::Error::from_raw_os_error(
            i32::try_from(err).unwrap_or(i32::MAX),
        ));
    }
    // SAFETY: W4: `sd` was `LocalAlloc`ed by `GetSecurityInfo` for us to
    // free; only this guard frees it.
    let guard = unsafe { LocalBox::new(sd) };
    Ok(ObjectSecurity {
        _sd: guard,
        owner,
        dacl,
    })
}

/// Whether the object's owner is the user this process runs as (the token
/// user) or the owner this process's token gives the objects it creates
/// without naming one ([`default_owner_sid`]): an object this process
/// could have made itself. For an elevated administrator (and under Wine)
/// that default owner is `BUILTIN\Administrators`, so the sections such a
/// peer makes with default security (Python's `SharedMemory` does) are
/// accepted, as root's files are by a process running as root; a process
/// that is not elevated accepts its user alone.
///
/// # Errors
///
/// The error of `GetSecurityInfo` (the handle needs `READ_CONTROL`) or of
/// reading the token.
pub fn owner_is_current_user(h: BorrowedHandle<'_>, kind: ObjectKind) -> io::Result<bool> {
    let sec = query(h, kind)?;
    if sec.owner.is_null() {
        return Ok(false);
    }
    let me = current_user_sid()?;
    // SAFETY: W4: `sec.owner` points into the descriptor `sec` keeps alive,
    // to the valid SID `GetSecurityInfo` returned.
    if unsafe { me.equals(sec.owner) } {
        return Ok(true);
    }
    let default = default_owner_sid()?;
    // SAFETY: W4: as above.
    Ok(unsafe { default.equals(sec.owner) })
}

/// Whether the object's DACL lets anyone other than the current user,
/// SYSTEM and `BUILTIN\Administrators` write it (see
/// `ObjectKind::write_mask` for the bits). A NULL DACL (everyone has all
/// access) counts as writable by others.
///
/// Trusted besides the user: SYSTEM is the operating system itself, and
/// Administrators can take ownership of any object and rewrite its DACL
/// whatever it says (`SeTakeOwnershipPrivilege`), the counterpart of
/// root on Unix, whose access the Unix mode check does not count either.
/// Under UAC, a non-elevated administrator's token holds Administrators
/// only as a deny-only SID, so an ACE for it grants such a process nothing.
/// `OWNER RIGHTS` (S-1-3-4) is trusted only when the owner is the current
/// user.
///
/// Conservative reading: inherit-only ACEs are skipped (they do not apply
/// to the object); deny ACEs are ignored (a deny could only take access
/// away, so ignoring one can only answer "writable" wrongly, never
/// "not writable"), as are audit, alarm, label and other ACEs that grant
/// nothing; allow ACEs of kinds this function does not parse (object,
/// compound, callback-object ACEs) and ACE kinds unknown today count as
/// others when their mask has a write bit; an allow ACE whose SID does not
/// fit in it counts as others.
///
/// # Errors
///
/// The error of `GetSecurityInfo` (the handle needs `READ_CONTROL`), of
/// reading the token, or of `GetAce`.
pub fn others_may_write(h: BorrowedHandle<'_>, kind: ObjectKind) -> io::Result<bool> {
    let sec = query(h, kind)?;
    // SAFETY: W4: `sec.owner` and `sec.dacl` are null or point into the
    // descriptor `sec` keeps alive until after the call, to the valid SID
    // and ACL `GetSecurityInfo` returned.
    unsafe { dacl_lets_others_write(sec.owner, sec.dacl, kind) }
}

/// Whether a security descriptor written in SDDL lets others write an
/// object of `kind`, by the rules of [`others_may_write`]: the same walk
/// over a descriptor built in memory (tests of the rules on every DACL
/// shape, where the file system under test cannot store one, as Wine's).
///
/// # Errors
///
/// The error of `ConvertStringSecurityDescriptorToSecurityDescriptorW`
/// (for example `ERROR_INVALID_PARAMETER` for malformed SDDL).
#[cfg_attr(
    not(test),
    allow(dead_code, reason = "used by the tests of `sys::windows`")
)]
pub(super) fn sddl_lets_others_write(sddl: &str, kind: ObjectKind) -> io::Result<bool> {
    use windows_sys::Win32::Security::Authorization::{
        ConvertStringSecurityDescriptorToSecurityDescriptorW, SDDL_REVISION_1,
    };
    use windows_sys::Win32::Security::{GetSecurityDescriptorDacl, GetSecurityDescriptorOwner};
    let w = super::handle::wide(std::ffi::OsStr::new(sddl))?;
    let mut sd = ptr::null_mut();
    // SAFETY: W2/W3: `w` is NUL-terminated; `sd` is a live local the call
    // sets to a `LocalAlloc`ed descriptor.
    check(unsafe {
        ConvertStringSecurityDescriptorToSecurityDescriptorW(
            w.as_ptr(),
            SDDL_REVISION_1,
            &mut sd,
            ptr::null_mut(),
        )
    })?;
    // SAFETY: W4: `sd` is ours to free with `LocalFree`, only here.
    let guard = unsafe { LocalBox::new(sd) };
    let (mut owner, mut defaulted) = (ptr::null_mut(), 0);
    // SAFETY: W2/W4: `sd` is the valid descriptor `guard` keeps alive; the
    // out-pointers are live locals.
    check(unsafe { GetSecurityDescriptorOwner(sd, &mut owner, &mut defaulted) })?;
    let (mut present, mut dacl) = (0, ptr::null_mut());
    // SAFETY: as above.
    check(unsafe { GetSecurityDescriptorDacl(sd, &mut present, &mut dacl, &mut defaulted) })?;
    if present == 0 {
        // No DACL at all: like a NULL DACL, everyone has every right.
        dacl = ptr::null_mut();
    }
    // SAFETY: W4: `owner` and `dacl` are null or point into the descriptor
    // `guard` keeps alive until after the call.
    let r = unsafe { dacl_lets_others_write(owner, dacl, kind) };
    drop(guard);
    r
}

/// The DACL walk of [`others_may_write`].
///
/// # Safety
///
/// `owner` is null or points to a valid SID, and `dacl` is null or points
/// to a valid ACL (one the system returned, so its ACEs lie inside it),
/// both readable for the whole call.
pub(super) unsafe fn dacl_lets_others_write(
    owner: PSID,
    dacl: *const ACL,
    kind: ObjectKind,
) -> io::Result<bool> {
    if dacl.is_null() {
        return Ok(true);
    }
    let me = current_user_sid()?;
    let system = Sid::well_known(WinLocalSystemSid)?;
    let admins = Sid::well_known(WinBuiltinAdministratorsSid)?;
    let owner_rights = Sid::well_known(WinCreatorOwnerRightsSid)?;
    // SAFETY: W4: `owner` is a valid SID (this function's contract).
    let owner_is_me = !owner.is_null() && unsafe { me.equals(owner) };
    // SAFETY: W4/W6: `dacl` points to a valid ACL (this function's
    // contract); read unaligned to need nothing.
    let header = unsafe { dacl.read_unaligned() };
    let mask_bits = kind.write_mask();
    for i in 0..u32::from(header.AceCount) {
        let mut ace = ptr::null_mut();
        // SAFETY: W6: `i` < `AceCount` of the valid ACL; `ace` is a live
        // local set to the ACE's address inside the ACL.
        check(unsafe { GetAce(dacl, i, &mut ace) })?;
        let ace = ace.cast::<u8>().cast_const();
        // SAFETY: W6: `GetAce` returned the address of an ACE of the live
        // ACL, which starts with an `ACE_HEADER`.
        let ah = unsafe { ace.cast::<ACE_HEADER>().read_unaligned() };
        if u32::from(ah.AceFlags) & INHERIT_ONLY_ACE != 0 {
            continue;
        }
        let size = usize::from(ah.AceSize);
        if size < 8 {
            // Not even a mask: malformed, so the system would not have
            // accepted it; treat it as a grant to others.
            return Ok(true);
        }
        // SAFETY: W6: every ACE kind has its 32-bit access mask right after
        // the 4-byte header, inside `AceSize` (checked >= 8 above).
        let mask = unsafe { ace.wrapping_add(4).cast::<u32>().read_unaligned() };
        if mask & mask_bits == 0 {
            continue;
        }
        match u32::from(ah.AceType) {
            ACCESS_ALLOWED_ACE_TYPE | ACCESS_ALLOWED_CALLBACK_ACE_TYPE => {}
            // Deny, audit and alarm ACEs, labels, resource attributes,
            // policy ids, trust labels and access filters grant nothing.
            ACCESS_DENIED_ACE_TYPE
            | SYSTEM_AUDIT_ACE_TYPE
            | SYSTEM_ALARM_ACE_TYPE
            | ACCESS_DENIED_OBJECT_ACE_TYPE
            | SYSTEM_AUDIT_OBJECT_ACE_TYPE
            | SYSTEM_ALARM_OBJECT_ACE_TYPE
            | ACCESS_DENIED_CALLBACK_ACE_TYPE
            | ACCESS_DENIED_CALLBACK_OBJECT_ACE_TYPE
            | SYSTEM_AUDIT_CALLBACK_ACE_TYPE..=SYSTEM_ACCESS_FILTER_ACE_TYPE => continue,
            // Allow ACEs this walk does not parse (compound, object,
            // callback-object) and kinds unknown today: a grant to others.
            _ => return Ok(true),
        }
        // A SID: revision, sub-authority count, 6-byte authority, then
        // 4 bytes per sub-authority; it starts at offset 8.
        if size < 8 + 8 {
            return Ok(true);
        }
        let sid = ace.wrapping_add(8);
        // SAFETY: W6: offset 9 < 16 <= `AceSize`: inside the ACE.
        let subs = usize::from(unsafe { sid.wrapping_add(1).read() });
        if 8 + 8 + 4 * subs > size {
            return Ok(true);
        }
        let psid: PSID = sid.cast_mut().cast();
        // SAFETY: W6: the SID lies wholly inside the ACE (checked above);
        // `IsValidSid` only reads it.
        if unsafe { IsValidSid(psid) } == 0 {
            return Ok(true);
        }
        let mut trusted = false;
        for candidate in [&me, &system, &admins] {
            // SAFETY: W6: `psid` is a valid SID inside the live ACL
            // (checked by `IsValidSid`); `equals` only reads it.
            trusted |= unsafe { candidate.equals(psid) };
        }
        if owner_is_me {
            // SAFETY: W6: as above.
            trusted |= unsafe { owner_rights.equals(psid) };
        }
        if !trusted {
            return Ok(true);
        }
    }
    Ok(false)
}
