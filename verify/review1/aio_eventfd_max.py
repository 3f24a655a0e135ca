# Review 1: a holder of an eventfd can push its counter to u64::MAX (past
# what write(2) allows) through the kernel's eventfd_signal, here an aio
# completion with IOCB_FLAG_RESFD. Then the eventfd polls POLLERR and a
# read returns 0xffffffffffffffff.
import ctypes, os, struct, select, tempfile
libc = ctypes.CDLL(None, use_errno=True)
SYS_io_setup, SYS_io_submit, SYS_io_getevents = 206, 209, 208
efd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
os.write(efd, struct.pack("Q", 0xfffffffffffffffe))
ctx = ctypes.c_ulong(0)
assert libc.syscall(SYS_io_setup, 8, ctypes.byref(ctx)) == 0, ctypes.get_errno()
f = tempfile.TemporaryFile(); f.write(b"x" * 4096); f.flush()
buf = ctypes.create_string_buffer(4096)
class iocb(ctypes.Structure):
    _fields_ = [("data", ctypes.c_uint64), ("key", ctypes.c_uint32), ("rw_flags", ctypes.c_int32),
                ("opcode", ctypes.c_uint16), ("reqprio", ctypes.c_int16), ("fildes", ctypes.c_uint32),
                ("buf", ctypes.c_uint64), ("nbytes", ctypes.c_uint64), ("offset", ctypes.c_int64),
                ("reserved2", ctypes.c_uint64), ("flags", ctypes.c_uint32), ("resfd", ctypes.c_uint32)]
cb = iocb(opcode=0, fildes=f.fileno(), buf=ctypes.addressof(buf), nbytes=4096, offset=0, flags=1, resfd=efd)
arr = (ctypes.POINTER(iocb) * 1)(ctypes.pointer(cb))
print("io_submit:", libc.syscall(SYS_io_submit, ctx, 1, arr))
ev = ctypes.create_string_buffer(32 * 8)
print("io_getevents:", libc.syscall(SYS_io_getevents, ctx, 1, 1, ev, None))
p = select.poll(); p.register(efd, select.POLLIN)
print("poll revents: %#x (POLLIN=1, POLLERR=8)" % p.poll(0)[0][1])
print("read: %#x" % struct.unpack("Q", os.read(efd, 8))[0])
