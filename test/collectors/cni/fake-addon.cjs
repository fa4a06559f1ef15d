// A stand-in for tapio_netlink.node with the same open() contract, to inject the failures a real
// kernel will not produce on demand: a refused socket (EPERM) and a reader that dies (EIO).
'use strict'

const state = { mode: 'ok', handles: [] }

function frame(kind, payload) {
  const head = Buffer.alloc(8)
  head.writeUInt32LE(kind, 0)
  head.writeUInt32LE(payload.length, 4)
  return Buffer.concat([head, payload, Buffer.alloc((4 - (payload.length % 4)) % 4)])
}

function done(seq, pid) {
  const m = Buffer.alloc(20)
  m.writeUInt32LE(20, 0)
  m.writeUInt16LE(3, 4) // NLMSG_DONE
  m.writeUInt16LE(2, 6)
  m.writeUInt32LE(seq, 8)
  m.writeUInt32LE(pid, 12)
  return frame(1, m)
}

function open(groups, rcvbuf, onBatch) {
  if (state.mode === 'eperm') {
    const e = new Error('netlink open: Operation not permitted')
    e.errno = 1
    e.syscall = 'netlink open'
    throw e
  }
  const handle = {
    portId: 4242,
    closed: false,
    send(buf) {
      const seq = buf.readUInt32LE(8)
      setImmediate(() => !handle.closed && onBatch(done(seq, 4242)))
      return buf.length
    },
    close() {
      handle.closed = true
    },
    /** The reader thread died with this errno. */
    die(errno) {
      const p = Buffer.alloc(4)
      p.writeInt32LE(errno, 0)
      if (!handle.closed) onBatch(frame(3, p))
    },
  }
  state.handles.push(handle)
  return handle
}

module.exports = { open, state }
