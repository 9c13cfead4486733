import type { NextFunction, Request, Response } from 'express';

/** How often an upload's progress is looked at, at most, in milliseconds. */
const MAX_CHECK_INTERVAL_MS = 1000;

/**
 * Express middleware: a multipart upload that sends nothing for `idleSeconds` is dropped. The
 * client gets 408 (code UPLOAD_IDLE_TIMEOUT; OpenAI's error shape under `/v1/`) when no answer
 * has been started, then the request is destroyed, so multer stops, removes the partial temp
 * file and the connection is freed. 0 turns it off.
 *
 * Progress is read from the socket's byte counter rather than from `data` events, which would
 * switch the request into flowing mode before multer pipes it and lose the first bytes. The watch
 * ends once the whole body has arrived (`req.complete`): the wait that follows an upload (the
 * OpenAI route's synchronous transcription) is not idleness of the upload.
 */
export function uploadIdleTimeout(idleSeconds: number) {
  const idleMs = idleSeconds * 1000;
  return (req: Request, res: Response, next: NextFunction): void => {
    if (idleMs <= 0 || !String(req.headers['content-type'] ?? '').toLowerCase().startsWith('multipart/')) {
      next();
      return;
    }
    const socket = req.socket;
    let seen = socket.bytesRead;
    let lastProgress = Date.now();
    const timer = setInterval(() => {
      if (req.complete || req.destroyed) {
        stop();
        return;
      }
      if (socket.bytesRead !== seen) {
        seen = socket.bytesRead;
        lastProgress = Date.now();
      } else if (Date.now() - lastProgress >= idleMs) {
        stop();
        drop();
      }
    }, Math.max(50, Math.min(MAX_CHECK_INTERVAL_MS, idleMs / 4)));
    timer.unref();
    const stop = () => clearInterval(timer);
    const drop = () => {
      if (res.headersSent) {
        req.destroy();
        return;
      }
      const message = `the upload sent nothing for ${idleSeconds} s and was dropped (UPLOAD_IDLE_TIMEOUT=${idleSeconds}); send the request body without pausing`;
      const body = req.path.startsWith('/v1/')
        ? { error: { message, type: 'invalid_request_error', param: 'file', code: 'upload_idle_timeout' } }
        : { statusCode: 408, error: 'Request Timeout', code: 'UPLOAD_IDLE_TIMEOUT', message, upload_idle_timeout_sec: idleSeconds };
      res.once('finish', () => req.destroy());
      res.status(408).set('Connection', 'close').json(body);
    };
    res.once('close', stop);
    next();
  };
}
