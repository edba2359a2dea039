import { defineConfig } from "vite";
import vue from "@vitejs/plugin-vue";

// The development server forwards /api to Django's runserver, whose address VITE_API_TARGET overrides.
const apiTarget = process.env.VITE_API_TARGET || "http://127.0.0.1:8000";

export default defineConfig({
  plugins: [vue()],
  server: {
    proxy: {
      "/api": apiTarget,
    },
  },
});
