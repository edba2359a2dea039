import { onMounted, ref } from "vue";
import { fetchJson } from "./api.js";

/** Fetches path when the component mounts, and exposes the result, the error message and the loading state. */
export function useApi(path) {
  const data = ref(null);
  const error = ref(null);
  const loading = ref(true);

  onMounted(async () => {
    try {
      data.value = await fetchJson(path);
    } catch (caught) {
      error.value = caught.message;
    } finally {
      loading.value = false;
    }
  });

  return { data, error, loading };
}
