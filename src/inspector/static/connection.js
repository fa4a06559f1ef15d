/**
 * The feed connection. EventSource retries by itself after a dropped stream, but gives up for good
 * on an HTTP error and cannot notice a silently dead peer; both are covered here: a closed source
 * is reopened with backoff, and a feed quiet for longer than a few stats periods is reopened too.
 */
const QUIET_MS = 5000

export function connectFeed(url, handlers) {
  let source
  let retryMs = 500
  let retryTimer
  let lastMessage = Date.now()

  const seen = () => {
    lastMessage = Date.now()
  }
  const reopen = () => {
    source?.close()
    clearTimeout(retryTimer)
    retryTimer = setTimeout(open, retryMs)
    retryMs = Math.min(retryMs * 2, 8000)
  }
  const open = () => {
    handlers.status(source ? 'reconnecting' : 'connecting')
    source = new EventSource(url)
    seen()
    const on = (name, fn) =>
      source.addEventListener(name, (e) => {
        seen()
        let data
        try {
          data = JSON.parse(e.data)
        } catch {
          return
        }
        fn(data)
      })
    on('hello', (data) => {
      retryMs = 500
      handlers.status('open')
      handlers.hello(data)
    })
    on('transition', handlers.transition)
    on('stats', handlers.stats)
    source.addEventListener('error', () => {
      handlers.status('reconnecting')
      if (source.readyState === EventSource.CLOSED) reopen()
    })
  }
  setInterval(() => {
    if (source && source.readyState === EventSource.OPEN && Date.now() - lastMessage > QUIET_MS) reopen()
  }, 1000)
  open()
}
