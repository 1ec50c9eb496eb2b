// Types of vite-plugin-pwa's `virtual:pwa-register` (src/pwa/register.ts).
/// <reference types="vite-plugin-pwa/client" />
