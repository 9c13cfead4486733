import { Module, RequestMethod, type MiddlewareConsumer, type NestModule } from '@nestjs/common';
import express, { type NextFunction, type Request, type Response } from 'express';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The web page (`public/`: index.html, app.js, style.css — static files, no build step) served
 * at `/` by the api role. It is a client of the public job API like any other: it holds no
 * server-side state and needs no other wiring.
 */

/** Path prefixes that belong to the API and operations endpoints: never looked up on disk. */
const RESERVED = /^\/(api|v1|health|metrics|docs)(\/|$)/;

/**
 * `public/` of the project root: the first directory above this file that holds package.json
 * (dist/src/web/ when built, src/web/ under ts-jest), so it works from either tree.
 *
 * @throws Error when no package.json is found above this file.
 */
export function publicDir(from: string = path.dirname(fileURLToPath(import.meta.url))): string {
  for (let dir = from; ; dir = path.dirname(dir)) {
    if (existsSync(path.join(dir, 'package.json'))) return path.join(dir, 'public');
    if (path.dirname(dir) === dir) throw new Error(`no package.json above ${from}: cannot locate public/`);
  }
}

/**
 * Express middleware serving `dir` for GET and HEAD. Unknown paths fall through to the routes
 * (so a 404 stays the API's JSON 404), reserved prefixes skip the disk lookup, directories are
 * not redirected, dotfiles are hidden. Files are revalidated on every load (`no-cache` with
 * ETag): they are not content-hashed, so a long max-age would pin an old page after an upgrade.
 * The page's Content-Security-Policy allows only its own scripts and styles; media may come from
 * any origin because `audio_url` can be a presigned object-storage URL.
 */
export function staticPage(dir: string = publicDir()): (req: Request, res: Response, next: NextFunction) => void {
  const serve = express.static(dir, {
    index: 'index.html',
    redirect: false,
    dotfiles: 'ignore',
    fallthrough: true,
    maxAge: 0,
    setHeaders: (res, file) => {
      res.setHeader('Cache-Control', 'no-cache');
      res.setHeader('X-Content-Type-Options', 'nosniff');
      if (file.endsWith('.html')) {
        res.setHeader(
          'Content-Security-Policy',
          "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; media-src * blob: data:; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
        );
        res.setHeader('Referrer-Policy', 'no-referrer');
      }
    },
  });
  return (req, res, next) => {
    if (RESERVED.test(req.path)) return next();
    serve(req, res, next);
  };
}

/**
 * Serves the web page. Import it in the api role only (workers serve no HTTP). Every GET (and
 * HEAD) path is offered to the static handler; it answers only for files that exist in `public/`.
 */
@Module({})
export class WebModule implements NestModule {
  configure(consumer: MiddlewareConsumer): void {
    // A GET route (not `use`): Express keeps req.url whole, and answers HEAD through it too.
    consumer.apply(staticPage()).forRoutes({ path: '{*path}', method: RequestMethod.GET });
  }
}
