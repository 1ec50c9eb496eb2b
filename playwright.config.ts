import { defineConfig } from '@playwright/test';
import { chromiumLaunchOptions } from './e2e/browser';

// E2E_PORT: several checkouts on one machine can run their e2e suites side by side.
const PORT = Number(process.env.E2E_PORT ?? 4317);

export default defineConfig({
  testDir: 'e2e',
  // WebGPU here is SwiftShader (WebGPU on the CPU): correct, slow. One worker: the machine has
  // two cores, and each test loads the model in a fresh browser context.
  timeout: 240_000,
  expect: { timeout: 120_000 },
  workers: 1,
  fullyParallel: false,
  forbidOnly: !!process.env.CI,
  retries: 0,
  reporter: 'list',
  use: {
    browserName: 'chromium',
    baseURL: `http://127.0.0.1:${PORT}`,
    trace: 'retain-on-failure',
    launchOptions: chromiumLaunchOptions({ webgpu: true }),
  },
  // `npm run test:e2e` builds first; `vite preview` serves dist/ with COOP/COEP (vite.config.ts).
  webServer: {
    command: `npx vite preview --host 127.0.0.1 --port ${PORT} --strictPort`,
    url: `http://127.0.0.1:${PORT}`,
    reuseExistingServer: !process.env.CI,
    timeout: 60_000,
    stdout: 'ignore',
    stderr: 'pipe',
  },
});
