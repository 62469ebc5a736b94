// Prints what Java programs print on failure: a caught exception logged with
// its cause chain (as printStackTrace writes it), then an uncaught one.
public class Boom {
    static class Repository {
        String load(int id) {
            if (id < 0) {
                throw new IllegalArgumentException("negative id " + id);
            }
            return "row" + id;
        }
    }

    static class Service {
        Repository repo = new Repository();
        String handle(int id) {
            try {
                return repo.load(id);
            } catch (IllegalArgumentException e) {
                throw new IllegalStateException("cannot handle request " + id, e);
            }
        }
    }

    public static void main(String[] args) throws Exception {
        Service s = new Service();
        for (int i = 0; i < 3; i++) {
            System.out.println("INFO handled request " + i + " -> " + s.handle(i));
            try {
                s.handle(-i - 1);
            } catch (IllegalStateException e) {
                System.out.println("ERROR request failed");
                e.printStackTrace(System.out);
            }
        }
        System.out.println("INFO shutting down");
        int[] a = new int[1];
        System.out.println(a[Integer.parseInt(args.length > 0 ? args[0] : "2")]);
    }
}
