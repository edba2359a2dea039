import { createRouter, createWebHistory } from "vue-router";
import HomeView from "./views/HomeView.vue";
import OperativosView from "./views/OperativosView.vue";
import HistoricoView from "./views/HistoricoView.vue";
import CuentaView from "./views/CuentaView.vue";

// History mode needs the web server to serve index.html for every path that is not a file, an API or an admin URL.
export default createRouter({
  history: createWebHistory(),
  routes: [
    { path: "/", name: "home", component: HomeView },
    { path: "/operativos", name: "operativos", component: OperativosView },
    { path: "/historico", name: "historico", component: HistoricoView },
    { path: "/cuenta", name: "cuenta", component: CuentaView },
  ],
});
