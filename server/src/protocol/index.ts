/** The daemon ⇄ extension protocol: every vlcache/* message, declared once. */
export * from './ask';
export * from './clear-cache';
export * from './download-model';
export * from './errors';
export * from './explain';
export * from './gpu-install';
export * from './initialize';
export * from './prefetch';
export * from './stats';
export * from './status';
export * from './reuse';
