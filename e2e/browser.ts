// How the e2e tests launch Chromium (see ../shared/design/MACHINE.md): Debian's Chromium, or
// Playwright's own browser where that path does not exist (a developer's machine).
import { existsSync } from 'node:fs';
import type { LaunchOptions } from '@playwright/test';

export function chromiumLaunchOptions({ webgpu }: { webgpu: boolean }): LaunchOptions {
  const chromiumPath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
  return {
    executablePath: existsSync(chromiumPath) ? chromiumPath : undefined,
    args: [
      '--headless=new',
      '--no-sandbox',
      // Headless Chromium offers a WebGPU adapter (SwiftShader without a GPU) only with this.
      ...(webgpu ? ['--enable-unsafe-webgpu'] : []),
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
    ],
  };
}
